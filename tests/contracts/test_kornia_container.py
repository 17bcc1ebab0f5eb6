"""maskmix transforms inside Kornia's ``AugmentationSequential`` (torch).

Kornia hands a module that is not one of its augmentations the images alone and returns its other
``data_keys`` unchanged. A strategy that moves pixels (``dense_targets="move"``) or writes
``mask_fill`` would then leave masks, boxes or keypoints silently misaligned: it refuses, naming
the container and what to do. Everything else runs as usual there: images-only containers, and
masking strategies, which keep masks and boxes where they are (what they do outside Kornia too).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
K = pytest.importorskip("kornia.augmentation")

from helpers import make_images  # noqa: E402

from maskmix import registry  # noqa: E402

#: Every torch strategy that transforms images alone (the mixers need labels, which Kornia's
#: container does not give a foreign module), with the class of its torch implementation.
SINGLE = [pytest.param(registry.implementation(spec.name, "torch"), id=spec.name)
          for spec in registry.specs("torch") if spec.family != "mixing"]

#: The strategies that can write ``mask_fill`` on the masks of erased pixels.
MASK_FILL = [pytest.param(registry.implementation(spec.name, "torch"), id=spec.name)
             for spec in registry.specs("torch") if "mask_fill" in spec.param_names]

BOX = [[[1.0, 1.0, 6.0, 5.0]]]


def targets(keys: list[str], batch: int) -> list[torch.Tensor]:
    masks = torch.randint(0, 3, (batch, 1, 12, 10), generator=torch.Generator().manual_seed(0)).float()
    return [masks if key == "mask" else torch.tensor(BOX * batch) for key in keys]


@pytest.mark.parametrize("cls", SINGLE)
@pytest.mark.parametrize("keys", [["mask"], ["bbox_xyxy"], ["mask", "keypoints"]], ids="+".join)
def test_pixel_targets_in_the_container_are_refused_or_kept(cls, keys) -> None:
    images = make_images((3, 3, 12, 10), torch.float32, seed=1)
    given = targets(keys, 3) if keys != ["mask", "keypoints"] else [targets(["mask"], 3)[0],
                                                                    torch.tensor([[[2.0, 3.0]]] * 3)]
    # Seeded: Hide-and-Seek may hide no cell of an image (erased_patches starts at 0).
    transform = cls(augmentation_ratio=1.0, generator=torch.Generator().manual_seed(5))
    container = K.AugmentationSequential(transform, data_keys=["input", *keys])
    if cls.dense_targets != "keep":
        with pytest.raises(ValueError, match=rf"^{cls.__name__}: called inside a Kornia AugmentationSequential "
                                             rf"with data_keys \[.*\]; .* {cls.__name__} moves pixels\. Run the "
                                             r"Kornia container first"):
            container(images, *given)
        return
    out = container(images, *given)
    # A masking strategy keeps masks, boxes and keypoints where they are, in Kornia as outside.
    for before, after in zip(given, out[1:], strict=True):
        torch.testing.assert_close(after.reshape(before.shape), before)
    assert not torch.equal(out[0], images)


@pytest.mark.parametrize("cls", MASK_FILL)
def test_mask_fill_in_a_container_with_masks_is_refused(cls) -> None:
    images = make_images((3, 3, 12, 10), torch.float32, seed=1)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: called inside .* writes mask_fill\."):
        K.AugmentationSequential(cls(mask_fill=255), data_keys=["input", "mask"])(images, *targets(["mask"], 3))
    # Boxes are not masks: mask_fill does not concern them.
    K.AugmentationSequential(cls(mask_fill=255), data_keys=["input", "bbox_xyxy"])(images, *targets(["bbox_xyxy"], 3))


@pytest.mark.parametrize("cls", SINGLE)
def test_images_only_containers_and_nested_sequentials_run(cls) -> None:
    images = make_images((3, 3, 12, 10), torch.float32, seed=2)
    transform = cls(augmentation_ratio=1.0, generator=torch.Generator().manual_seed(3))
    expected = cls(augmentation_ratio=1.0, generator=torch.Generator().manual_seed(3))(images)
    torch.testing.assert_close(K.AugmentationSequential(transform, data_keys=["input"])(images), expected)
    if cls.dense_targets != "keep":
        nested = K.AugmentationSequential(K.ImageSequential(cls()), data_keys=["input", "mask"])
        with pytest.raises(ValueError, match="called inside a Kornia AugmentationSequential"):
            nested(images, targets(["mask"], 3)[0])
        # An inner AugmentationSequential has data_keys of its own (the default, images alone),
        # while the outer one routes the boxes through it: the outer keys count too.
        for depth in (1, 3):
            inner = cls()
            for _ in range(depth):
                inner = K.AugmentationSequential(inner)
            outer = K.AugmentationSequential(inner, data_keys=["input", "bbox_xyxy"])
            with pytest.raises(ValueError, match=r"called inside a Kornia AugmentationSequential with data_keys "
                                                 r"\[.*'BBOX_XYXY'\]"):
                outer(images, *targets(["bbox_xyxy"], 3))
