"""Keras dense targets (SPEC §8 "Keras 3 conventions", "Segmentation masks", "Boxes"), over the registry.

The masking layers take a dict as Keras' image preprocessing layers do: the images are erased,
``segmentation_masks`` get ``mask_fill`` on exactly the erased pixels (or are kept when it is None),
``labels``, ``bounding_boxes`` and any other key pass through unchanged. The erased pixels are read
back from the images (the fill differs from every image value), so the mask check is independent
of the layer's own mask computation.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import numpy as np
import pytest
import tensorflow as tf

from maskmix import registry

MASKING = registry.specs(framework="keras", family="masking")
IGNORE = 255


def _layer(spec: registry.StrategySpec, **overrides: object) -> object:
    config = {**spec.example, "fill_method": "black", "seed": 3, **overrides}
    return registry.implementation(spec.name, "keras")(**config)


def _batch(channels_first: bool = False) -> dict[str, object]:
    rng = np.random.default_rng(0)
    images = rng.uniform(0.1, 0.9, (4, 8, 8, 3)).astype("float32")
    masks = rng.integers(0, 5, (4, 8, 8, 1)).astype("int32")
    if channels_first:
        images, masks = images.transpose(0, 3, 1, 2), masks.transpose(0, 3, 1, 2)
    return {
        "images": images,
        "labels": np.arange(4, dtype="int64"),
        "segmentation_masks": masks,
        "bounding_boxes": {"boxes": rng.uniform(0, 8, (4, 2, 4)).astype("float32"),
                           "labels": np.ones((4, 2), "int32")},
        "extra": np.full((4,), 7.0, "float32"),
    }


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("spec", MASKING, ids=lambda s: s.flag)
def test_masking_writes_mask_fill_exactly_on_erased_pixels(spec, data_format):
    first = data_format == "channels_first"
    data = _batch(first)
    # Half the images selected: the unselected ones keep their masks whole.
    out = _layer(spec, mask_fill=IGNORE, data_format=data_format, augmentation_ratio=0.5)(data)
    axis = 1 if first else -1
    erased = np.any(np.asarray(out["images"]) != data["images"], axis=axis)
    assert erased.any() and not erased.all(axis=(1, 2)).any() and (~erased.any(axis=(1, 2))).any()
    masks = np.asarray(out["segmentation_masks"])
    assert masks.dtype == np.int32 and masks.shape == data["segmentation_masks"].shape
    masks, given = np.squeeze(masks, axis), np.squeeze(data["segmentation_masks"], axis)
    np.testing.assert_array_equal(masks == IGNORE, erased)
    np.testing.assert_array_equal(masks[~erased], given[~erased])
    for key in ("labels", "extra"):
        np.testing.assert_array_equal(np.asarray(out[key]), data[key])
    for key in ("boxes", "labels"):
        np.testing.assert_array_equal(np.asarray(out["bounding_boxes"][key]), data["bounding_boxes"][key])


@pytest.mark.parametrize("spec", MASKING, ids=lambda s: s.flag)
def test_masking_keeps_masks_by_default_and_matches_the_plain_call(spec):
    data = _batch()
    out = _layer(spec)(data)
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"]), data["segmentation_masks"])
    # The dict call draws what the images-only call draws: the same pixels change.
    np.testing.assert_array_equal(np.asarray(out["images"]), np.asarray(_layer(spec)(data["images"])))


@pytest.mark.parametrize("spec", MASKING[:1], ids=lambda s: s.flag)
def test_masking_dict_in_tf_data_map_and_single_images(spec):
    data = _batch()
    del data["bounding_boxes"]
    layer = _layer(spec, mask_fill=IGNORE)
    for batched in (True, False):
        ds = tf.data.Dataset.from_tensor_slices(data)
        ds = ds.batch(2).map(layer) if batched else ds.map(layer).batch(2)
        for out in ds:
            erased = np.all(out["images"].numpy() == 0, axis=-1)  # black fill; images lie in [0.1, 0.9]
            assert erased.any()
            np.testing.assert_array_equal(out["segmentation_masks"].numpy()[..., 0] == IGNORE, erased)


@pytest.mark.parametrize("spec", MASKING[:1], ids=lambda s: s.flag)
def test_masking_dict_errors(spec):
    layer = _layer(spec, mask_fill=IGNORE)
    with pytest.raises(ValueError, match=f"{spec.name}: a dict input must have an 'images' key"):
        layer({"image_batch": np.zeros((2, 4, 4, 3), "float32")})
    data = _batch()
    data["segmentation_masks"] = data["segmentation_masks"][:, :4]
    with pytest.raises(ValueError, match=f"{spec.name}: segmentation_masks must be \\(B, H, W, 1\\)"):
        layer(data)


def _mixing_layer(spec: registry.StrategySpec, **overrides: object) -> object:
    config = {**spec.example, "num_classes": 4, "seed": 5, **overrides}
    return registry.implementation(spec.name, "keras")(**config)


MIXING = registry.specs(framework="keras", family="mixing")


@pytest.mark.parametrize("spec", MIXING, ids=lambda s: s.flag)
def test_mixing_images_alone_are_mixed_and_returned_alone(spec):
    images = _batch()["images"]
    out = _mixing_layer(spec)(images)
    assert not isinstance(out, (tuple, list, dict))
    # Same seed, same draws: the images-only call mixes what the (images, labels) call mixes.
    mixed, _ = _mixing_layer(spec)((images, np.arange(4)))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(mixed))
    assert np.any(np.asarray(out) != images)


@pytest.mark.parametrize("spec", MIXING, ids=lambda s: s.flag)
def test_mixing_refuses_boxes(spec):
    data = _batch()
    del data["segmentation_masks"]
    with pytest.raises(ValueError, match=f"{spec.name}: bounding_boxes cannot follow pixels"):
        _mixing_layer(spec)(data)


def test_cutmix_masks_follow_the_pasted_pixels():
    data = _batch()
    del data["bounding_boxes"]
    layer = registry.implementation("RandomCutMix", "keras")(num_classes=4, seed=5, augmentation_ratio=0.5)
    # The partner of each image is recovered from the pixels: the pasted box equals the partner's.
    out = layer(data)
    images, masks = np.asarray(out["images"]), np.asarray(out["segmentation_masks"])[..., 0]
    given_images, given_masks = data["images"], data["segmentation_masks"][..., 0]
    assert masks.dtype == np.int32
    moved_any = False
    for i in range(4):
        changed = np.any(images[i] != given_images[i], axis=-1)
        if not changed.any():
            np.testing.assert_array_equal(masks[i], given_masks[i])
            continue
        moved_any = True
        partner = next(j for j in range(4) if np.array_equal(images[i][changed], given_images[j][changed]))
        np.testing.assert_array_equal(masks[i][changed], given_masks[partner][changed])
        np.testing.assert_array_equal(masks[i][~changed], given_masks[i][~changed])
    assert moved_any


def test_mixup_refuses_masks_saying_why():
    data = _batch()
    del data["bounding_boxes"]
    with pytest.raises(ValueError, match="RandomMixup: segmentation_masks cannot be mixed: Mixup blends every pixel"):
        _mixing_layer(registry.get("RandomMixup"))(data)


@pytest.mark.parametrize("spec", MASKING, ids=lambda s: s.flag)
def test_value_range_is_keras_name_for_pixels_range(spec):
    # Float images in [0, 255], as image_dataset_from_directory yields them: white is 255, not 1.
    images = _batch()["images"] * 255.0
    layer = _layer(spec, fill_method="white", value_range=(0, 255))
    out = np.asarray(layer(images))
    erased = out != images
    assert erased.any() and np.all(out[erased] == 255.0)
    clone = type(layer).from_config(layer.get_config())
    assert clone.pixels_range == (0, 255) and "value_range" not in layer.get_config()
    np.testing.assert_array_equal(np.asarray(clone(images)), out)
    with pytest.raises(ValueError, match=f"{spec.name}: value_range is Keras' name for pixels_range; give one"):
        _layer(spec, value_range=(0, 255), pixels_range=(0, 1))
