"""Dense targets on torch: segmentation masks follow the pixels, boxes pass or are refused.

Registry-driven: every torch strategy's example case (and its mixing form), classified by what its
class declares (``dense_targets``: ``move`` / ``keep`` / ``refuse``) and whether it erases
(:class:`~maskmix.torch.MaskingTransform`), never by a hand list.

Images carry each pixel's id (all pixels distinct across the batch) and masks are derived from the
same ids, so a mover is correct exactly when, after the call, every mask value is still the id of
the image pixel at the same place.
"""

from __future__ import annotations

import pytest
import torch
from registry_cases import NUM_CLASSES, example_cases
from torchvision import tv_tensors
from torchvision.transforms import v2

from maskmix.torch import MaskingTransform

CASES = example_cases("torch")
NAMES = list(CASES)
SHAPE = (4, 3, 6, 8)
MASK_FILL = 7  # not an id of the masks below (ids are multiples of 3 shifted by 1)


def build(name: str, **options):
    case = CASES[name]
    params = {p.name for p in case.spec.params}
    # Movers with exact pixel moves: nearest thumbnails, no colour jitter, so image ids decode.
    exact = {"resize_method": "nearest", "color_jitter": 0.0, "fill_method": -1.0}
    return case.build(**{**{k: v for k, v in exact.items() if k in params}, **options})


def id_images(shape=SHAPE) -> torch.Tensor:
    batch, channels, height, width = shape
    ids = torch.arange(batch * height * width, dtype=torch.float64).reshape(batch, 1, height, width)
    return ids.expand(batch, channels, height, width).clone()


def id_masks(images: torch.Tensor) -> tv_tensors.Mask:
    ids = images[:, 0].to(torch.int64)
    return tv_tensors.Mask(torch.stack([3 * ids + 1, ids], dim=1))  # (B, K=2, H, W)


def tensors_in(data) -> list[torch.Tensor]:
    """The tensors of nested dicts and lists, in order."""
    if isinstance(data, dict):
        return [t for value in data.values() for t in tensors_in(value)]
    if isinstance(data, (list, tuple)):
        return [t for value in data for t in tensors_in(value)]
    return [data]


def call(t, images, *targets):
    if t.needs_batch:
        out = t(images, torch.arange(images.shape[0]) % NUM_CLASSES, *targets)
        return out[0], out[2:]
    out = t(images, *targets)
    return out[0], out[1:]


@pytest.mark.parametrize("name", [name for name in NAMES if "thumbnail_area" in CASES[name].spec.param_names])
def test_masks_copy_the_source_pixels_of_a_legacy_nearest_thumbnail(name: str) -> None:
    # The masks were resized with nearest-exact whatever the images' method: with the legacy rule
    # (the paper presets') every box pixel of the mask came from the neighbouring source pixel.
    torch.manual_seed(2)
    images = id_images()
    out, (out_masks,) = call(build(name, resize_method="nearest_legacy", thumbnail_area=0.25), images,
                              id_masks(images))
    ids = out[:, 0].to(torch.int64)
    torch.testing.assert_close(out_masks.as_subclass(torch.Tensor), torch.stack([3 * ids + 1, ids], 1), rtol=0, atol=0)
    assert bool((out != images).any())


@pytest.mark.parametrize("ratio", [1.0, 0.5])
@pytest.mark.parametrize("name", NAMES)
def test_masks_follow_pixels(name: str, ratio: float) -> None:
    torch.manual_seed(1)
    t = build(name, augmentation_ratio=ratio)
    images = id_images()
    masks = id_masks(images)
    if t.dense_targets == "refuse":
        with pytest.raises(TypeError, match=rf"^{type(t).__name__}: cannot mix segmentation masks"):
            call(t, images, masks)
        return
    out, (out_masks,) = call(t, images, masks)
    assert isinstance(out_masks, tv_tensors.Mask) and out_masks.dtype == masks.dtype
    changed = (out != images).any(dim=1)
    if t.dense_targets == "move":
        ids = out[:, 0].to(torch.int64)
        expected = torch.stack([3 * ids + 1, ids], 1)
        torch.testing.assert_close(out_masks.as_subclass(torch.Tensor), expected, rtol=0, atol=0)
        assert bool(changed.any())
    else:
        assert t.dense_targets == "keep"
        assert torch.equal(out_masks, masks)
    if ratio < 1:
        untouched = ~changed.flatten(1).any(1)
        assert bool(untouched.any())
        assert torch.equal(out_masks[untouched], masks[untouched])


@pytest.mark.parametrize("name", [n for n in NAMES if issubclass(type(CASES[n].build()), MaskingTransform)])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.bool])
def test_mask_fill_written_on_erased_pixels(name: str, dtype: torch.dtype) -> None:
    torch.manual_seed(2)
    images = id_images() / 1000  # in [0, 1); the fill -1 is distinct from every pixel
    masks = tv_tensors.Mask((images[:, :2] * 1000).to(torch.int64).remainder(5).to(dtype))
    fill = 1 if dtype == torch.bool else MASK_FILL
    out, (out_masks,) = call(build(name, mask_fill=fill, augmentation_ratio=0.5), images, masks)
    erased = (out == -1.0).all(dim=1, keepdim=True)
    assert bool(erased.any())
    expected = torch.where(erased, torch.tensor(fill, dtype=dtype), masks.as_subclass(torch.Tensor))
    assert torch.equal(out_masks.as_subclass(torch.Tensor), expected)


@pytest.mark.parametrize("devices", [("meta", "cpu"), ("cpu", "meta")], ids=["masks_on_cpu", "masks_on_meta"])
@pytest.mark.parametrize("name", NAMES)
def test_masks_on_another_device_than_the_images(name: str, devices: tuple[str, str]) -> None:
    """Masks the call writes (moved with the pixels, or given mask_fill) on another device than
    the images failed in a raw torch error naming no transform; masks that pass through untouched
    may stay on their device, as with torchvision's transforms."""
    image_device, mask_device = devices
    erases = issubclass(type(CASES[name].build()), MaskingTransform)
    t = build(name, **({"mask_fill": MASK_FILL} if erases else {}))
    images = id_images().to(image_device)
    masks = tv_tensors.Mask(torch.zeros(SHAPE[0], *SHAPE[2:], dtype=torch.uint8, device=mask_device))
    labels = torch.arange(SHAPE[0], device=image_device) % NUM_CLASSES
    run = (lambda: t(images, labels, masks)) if t.needs_batch else (lambda: t(images, masks))
    if t.dense_targets == "refuse":
        with pytest.raises(TypeError, match=rf"^{type(t).__name__}: cannot mix segmentation masks"):
            run()
    elif t.dense_targets == "move" or erases:
        with pytest.raises(ValueError, match=rf"^{type(t).__name__}: segmentation masks are on {mask_device} but "
                                             rf"the images are on {image_device}; move the masks"):
            run()
    else:
        assert run()[-1] is masks  # passed through, where it was


MASK_FILL_OUT_OF_RANGE = [(torch.uint8, -1, 0, 255), (torch.uint8, 300, 0, 255), (torch.int8, 255, -128, 127),
                          (torch.bool, 255, 0, 1)]


@pytest.mark.parametrize("name", [n for n in NAMES if issubclass(type(CASES[n].build()), MaskingTransform)])
@pytest.mark.parametrize(("dtype", "fill", "low", "high"), MASK_FILL_OUT_OF_RANGE)
def test_a_mask_fill_outside_the_masks_dtype_is_refused(name, dtype, fill, low, high) -> None:
    """A cast would wrap it (an ignore index -1 on uint8 masks becoming class 255): refused."""
    masks = tv_tensors.Mask(torch.zeros(SHAPE[0], *SHAPE[2:], dtype=dtype))
    message = rf"^{name}: mask_fill={fill} does not fit the masks' dtype {dtype} \(\[{low}, {high}\]\)"
    with pytest.raises(ValueError, match=message):
        call(build(name, mask_fill=fill), id_images() / 1000, masks)


@pytest.mark.parametrize("name", NAMES)
def test_boxes_pass_or_are_refused(name: str) -> None:
    t = build(name)
    images = id_images()
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[0, 0, 2, 2]]), format="XYXY", canvas_size=SHAPE[-2:])
    if t.dense_targets == "keep":
        _, (out_boxes,) = call(t, images, boxes)
        assert out_boxes is boxes
    else:
        with pytest.raises(TypeError, match=rf"^{type(t).__name__}: cannot transform BoundingBoxes"):
            call(t, images, boxes)


@pytest.mark.parametrize("name", NAMES)
def test_plain_boxes_and_keypoints_pass_or_are_refused_by_their_key(name: str) -> None:
    """torchvision's detection targets hold plain tensors (``[{"boxes": Tensor[N, 4], ...}]``), and
    torchvision's convention passes plain tensors through: a strategy that moves or mixes pixels
    left them behind, silently. They are recognised by their key, at any depth."""
    t = build(name)
    images = id_images()
    batch = SHAPE[0]
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    samples = [
        [{"boxes": boxes, "labels": torch.zeros(1)} for _ in range(batch)],  # per-image target dicts
        {"bbox": boxes.expand(batch, 1, 4)},
        {"keypoints": torch.zeros(batch, 17, 3)},
        {"Boxes": [boxes] * batch},  # a per-image list of boxes, any case
    ]
    # A count or a flag named after boxes is no coordinates: it passes whatever the strategy.
    counts = {"num_boxes": torch.ones(SHAPE[0], dtype=torch.int64), "has_box": torch.ones(SHAPE[0], 4).bool()}
    _, (out,) = call(t, images, counts)
    assert all(out[key] is value for key, value in counts.items())
    for targets in samples:
        if t.dense_targets == "keep":
            _, (out,) = call(t, images, targets)
            assert all(a is b for a, b in zip(tensors_in(out), tensors_in(targets), strict=True))
        else:
            with pytest.raises(TypeError, match=rf"^{type(t).__name__}: the sample holds plain tensors under "
                                                r"'(boxes|bbox|keypoints|Boxes)', boxes or keypoints by the name"):
                call(t, images, targets)


@pytest.mark.parametrize("name", [n for n in NAMES if not CASES[n].build().needs_batch])
def test_images_under_an_image_key_after_another_plain_tensor_are_refused(name: str) -> None:
    """torchvision's convention transforms the first plain tensor of a sample without an Image:
    ``{"keypoints": ..., "image": ...}`` had its keypoints erased or moved and its image passed
    through. (The mixing transforms find the images by key.)"""
    t = build(name)
    images = id_images()
    sample = {"heatmap_ids": torch.zeros(2, 17, 3), "image": images}
    with pytest.raises(TypeError, match=rf"^{type(t).__name__}: the images of the sample \(under an image key\) "
                                        r"come after another plain tensor of shape \(2, 17, 3\)"):
        t(sample)
    # First, or typed, the images are found and the other tensor passes through.
    for fine in ({"image": images, "heatmap_ids": sample["heatmap_ids"]},
                 {"heatmap_ids": sample["heatmap_ids"], "image": tv_tensors.Image(images)}):
        out = t(fine)
        assert out["heatmap_ids"] is sample["heatmap_ids"]


def test_a_mapping_torchvision_cannot_flatten_is_still_refused_as_imageless() -> None:
    """A UserDict (transformers' BatchFeature) is one leaf to torchvision's flattening: the check
    of the images' key found no plain tensor there and raised a bare StopIteration, which ends a
    DataLoader's epoch without a word. It is the TypeError of a sample without images again."""
    import collections

    sample = collections.UserDict({"pixel_values": id_images()})
    for name in NAMES:
        t = build(name)
        if not t.needs_batch:
            with pytest.raises(TypeError, match=rf"^{type(t).__name__}: no image found in the sample"):
                t(sample)


@pytest.mark.parametrize("name", NAMES)
def test_masks_in_per_image_target_dicts_are_refused(name: str) -> None:
    """torchvision's detection layout: a batch and a list of per-image dicts of instance masks
    (N_i, H, W). Where N_i was the batch size, instance j of image i followed image j (its
    mask_fill, its moves), silently."""
    images = id_images()
    batch, _, height, width = SHAPE
    targets = [{"masks": tv_tensors.Mask(torch.full((batch, height, width), i)), "labels": torch.zeros(batch)}
               for i in range(batch)]
    with pytest.raises(TypeError, match=rf"^{type(build(name)).__name__}: the sample holds segmentation masks "
                                        rf"\(tv_tensors\.Mask\) in a list of {batch} per-image target dicts"):
        call(build(name, **({"mask_fill": MASK_FILL} if "mask_fill" in CASES[name].spec.param_names else {})),
             images, targets)


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].build().dense_targets != "refuse"])
def test_a_dict_sample_and_a_list_of_one_sample_are_no_detection_layout(name: str) -> None:
    """The detection-layout check read a dict sample (one item of the call) as a list of one
    per-image target dict, and refused plain images with a Mask beside them."""
    t = build(name)
    images = id_images()
    sample = {"image": images, "mask": id_masks(images)}
    if t.needs_batch:
        sample["labels"] = torch.arange(SHAPE[0]) % NUM_CLASSES
    for given in (sample,) if t.needs_batch else (sample, [sample]):  # a mixing call takes the sample alone
        out = t(given)
        out = out[0] if isinstance(out, list) else out
        assert out["mask"].shape == sample["mask"].shape


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].build().dense_targets != "refuse"])
def test_mask_layouts_and_bad_shapes(name: str) -> None:
    t = build(name)
    images = id_images()
    masks = id_masks(images)
    for layout in (masks[:, 0], masks):  # (B, H, W) and (B, K, H, W)
        _, (out_masks,) = call(t, images, tv_tensors.Mask(layout))
        assert out_masks.shape == layout.shape
    if not t.needs_batch:
        _, (one,) = call(t, images[0], tv_tensors.Mask(masks[0, 0]))  # one image (C, H, W), mask (H, W)
        assert one.shape == masks.shape[-2:]
    for bad in (masks[:3, 0], masks[:, 0, :, :-1], masks[:, :, None]):
        with pytest.raises(ValueError, match=rf"^{type(t).__name__}: segmentation masks must have the images'"):
            call(t, images, tv_tensors.Mask(bad))
    with pytest.raises(TypeError, match=rf"^{type(t).__name__}: segmentation masks must have an integer"):
        call(t, images, tv_tensors.Mask(masks.float()))


def test_dict_and_compose_samples() -> None:
    from maskmix.torch import RandomCutMix, RandomCutout

    torch.manual_seed(3)
    images = id_images()
    masks = id_masks(images)
    labels = torch.arange(4) % NUM_CLASSES
    out = RandomCutMix(num_classes=NUM_CLASSES)({"image": images, "mask": masks, "labels": labels})
    ids = out["image"][:, 0].to(torch.int64)
    assert torch.equal(out["mask"][:, 1].as_subclass(torch.Tensor), ids) and not torch.equal(out["mask"], masks)
    pipeline = v2.Compose([v2.RandomHorizontalFlip(p=1.0), RandomCutout(fill_method=-1.0, mask_fill=MASK_FILL)])
    flipped, out_masks = pipeline(tv_tensors.Image(images), masks)
    erased = (flipped == -1.0).all(dim=1)
    assert bool(erased.any())
    assert torch.equal(out_masks[:, 0].as_subclass(torch.Tensor)[erased], torch.full((int(erased.sum()),), MASK_FILL))


def test_video_masks_follow_their_clip() -> None:
    from maskmix.torch import RandomCutMix

    torch.manual_seed(4)
    clips = id_images((6, 3, 6, 8)).reshape(2, 3, 3, 6, 8)  # (B=2, T=3, C, H, W)
    masks = tv_tensors.Mask(clips[:, :, 0].to(torch.int64))  # (B, T, H, W)
    out, _, out_masks = RandomCutMix(num_classes=NUM_CLASSES)(tv_tensors.Video(clips), torch.tensor([0, 1]), masks)
    assert torch.equal(out_masks.as_subclass(torch.Tensor), out[:, :, 0].to(torch.int64))
    assert not torch.equal(out_masks, masks)
    stacked = tv_tensors.Mask(torch.stack([masks, masks], dim=2))  # (B, T, K, H, W)
    out_stacked = RandomCutMix(num_classes=NUM_CLASSES)(tv_tensors.Video(clips), torch.tensor([0, 1]), stacked)[2]
    assert out_stacked.shape == stacked.shape


@pytest.mark.compile
@pytest.mark.parametrize("name", ["RandomCutMix", "RandomCutout"])
def test_masks_under_torch_compile(name: str) -> None:
    # tv_tensors cannot enter a fullgraph region (Dynamo refuses their as_subclass), so the region
    # is what runs per call on plain tensors: the draw, the pixels and the masks' hook.
    torch._dynamo.reset()
    t = build(name, augmentation_ratio=0.5, **({"mask_fill": MASK_FILL} if name == "RandomCutout" else {}))

    def step(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params = t.make_params([images])
        return t.apply(images, params), t.apply_mask(masks, params)

    images = id_images()
    masks = id_masks(images).as_subclass(torch.Tensor)
    torch.manual_seed(0)
    eager = step(images, masks)
    torch.manual_seed(0)
    out, out_masks = torch.compile(step, fullgraph=True, backend="aot_eager")(images, masks)
    assert torch.equal(out, eager[0]) and torch.equal(out_masks, eager[1])
    assert not torch.equal(out_masks, masks)


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].build().dense_targets != "refuse"])
@pytest.mark.parametrize("shape", [(0, 3, 5, 5), (3, 3, 1, 1), (1, 3, 4, 4)])
def test_edge_batches_and_bool_masks(name: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(5)
    t = build(name)
    if isinstance(t, MaskingTransform):
        t = build(name, mask_fill=1)
    images = id_images(shape)
    masks = tv_tensors.Mask(images[:, 0].to(torch.int64).remainder(2).bool())
    out, (out_masks,) = call(t, images, masks)
    assert out_masks.dtype == torch.bool and out_masks.shape == masks.shape
    plain = out_masks.as_subclass(torch.Tensor)
    if t.dense_targets == "move":
        assert torch.equal(plain, out[:, 0].to(torch.int64).remainder(2).bool())
    elif isinstance(t, MaskingTransform):
        assert torch.equal(plain, masks | (out == -1.0).all(dim=1))
    else:
        assert out_masks is masks


def test_dense_targets_rule_is_checked_at_class_creation() -> None:
    expected = r"^Sloppy: dense_targets must be one of \('keep', 'move', 'refuse'\); got 'moves'"
    with pytest.raises(TypeError, match=expected):
        type("Sloppy", (MaskingTransform,), {"dense_targets": "moves"})
