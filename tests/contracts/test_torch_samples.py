"""torch sample conventions over the registry: what a sample may hold and the memory format.

A sample in which no image is found (a NumPy array, nested lists, numbers, only non-image
tv_tensors) is refused with a ``TypeError`` that says what to pass instead, as torchvision
refuses it ("No image or video was found in the sample"); a sample holding images next to other
items (numbers, strings, masks, boxes) transforms its images as they would be alone and returns the
other items untouched. A ``channels_last`` batch comes back ``channels_last``, with the values of
the contiguous batch's output for the same seed, eager and compiled.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from helpers import make_images
from registry_cases import NUM_CLASSES, example_cases, variant_cases
from torchvision import tv_tensors

#: Each strategy's example configuration (and its mixing form): the call conventions.
EXAMPLES = example_cases("torch")
#: Every named configuration of every strategy: the memory-format checks.
VARIANTS = variant_cases("torch")


def _call(case, transform, images):
    if case.mixes:
        return transform(images, torch.arange(images.shape[0]) % NUM_CLASSES)[0]
    out = transform(images)
    return out[0] if isinstance(out, tuple) else out  # (images, is_augmented) with return_labels


# --------------------------------------------------------------------------------------------
# Samples without an image.
# --------------------------------------------------------------------------------------------

IMAGELESS = {
    "ndarray": (lambda: np.zeros((2, 3, 4, 4), np.float32), "ndarray"),
    "ndarrays": (lambda: [np.zeros((3, 4, 4), np.float32)] * 2, "ndarray"),
    "nested_lists": (lambda: [[0.5]], "float"),
    "number": (lambda: 7, "int"),
    "ndarray_and_label": (lambda: (np.zeros((2, 3, 4, 4), np.float32), 1), "int, ndarray"),
    "mask_only": (lambda: tv_tensors.Mask(torch.zeros(2, 4, 4, dtype=torch.uint8)), "Mask"),
    "boxes_only": (lambda: tv_tensors.BoundingBoxes(torch.zeros(1, 4), format="XYXY", canvas_size=(4, 4)),
                   "BoundingBoxes"),
}


PIXEL_SHAPED = {
    "list of images": lambda x, y: [x, x.clone()],
    "plain mask": lambda x, y: (x, y, torch.zeros(x.shape[0], *x.shape[-2:], dtype=torch.int64)),
    "image and plain mask": lambda x, y: (tv_tensors.Image(x), y, torch.zeros(x.shape[0], 1, *x.shape[-2:])),
    "mask in a dict": lambda x, y: {"image": x, "labels": y, "mask": torch.zeros(x.shape[0], *x.shape[-2:])},
}


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("sample", PIXEL_SHAPED)
def test_plain_tensors_shaped_like_the_pixels_are_refused(name: str, sample: str) -> None:
    """torchvision transforms the images and passes other plain tensors through: a mask or a second
    image batch given that way stopped matching the images, silently (SPEC §8: a list of images
    is refused). Labels and other plain tensors pass through as before."""
    images, labels = make_images((4, 3, 8, 8)), torch.arange(4) % NUM_CLASSES
    transform = EXAMPLES[name].build()
    cls = type(transform).__name__
    data = PIXEL_SHAPED[sample](images, labels)
    if sample == "list of images" and EXAMPLES[name].mixes:
        data = [data[0], labels, data[1]]
    with pytest.raises(TypeError, match=rf"^{cls}: the sample holds a plain tensor of shape \(4, ([13], )?8, 8\) next "
                                        r"to the images .* Give segmentation masks as tv_tensors\.Mask"):
        transform(data)
    kept = {"weights": torch.ones(4), "ids": torch.arange(4), "labels": labels}  # not pixel-shaped: untouched
    out = transform({"image": images, **kept} if EXAMPLES[name].mixes else (images, kept))
    extra = out if EXAMPLES[name].mixes else out[1]
    assert extra["weights"] is kept["weights"] and extra["ids"] is kept["ids"]


@pytest.mark.parametrize("name", [name for name, case in EXAMPLES.items() if not case.mixes])
def test_a_plain_mask_next_to_one_image_is_refused(name: str) -> None:
    """One (C, H, W) image and its (H, W) mask as a plain tensor: the mask came back unchanged while
    CutSwap, CutPaste and Cut-Thumbnail moved the pixels (only 3-dim tensors were looked at)."""
    image = make_images((1, 3, 8, 8))[0]
    transform = EXAMPLES[name].build()
    with pytest.raises(TypeError, match=rf"^{type(transform).__name__}: the sample holds a plain tensor of shape "
                                        r"\(8, 8\) next to the images \(3, 8, 8\)"):
        transform((image, torch.zeros(8, 8, dtype=torch.int64)))
    out = transform((image, torch.zeros(8, dtype=torch.int64)))  # not laid out on the pixels: passes
    assert out[1].shape == (8,)


@pytest.mark.parametrize("name", [name for name, case in EXAMPLES.items() if not case.mixes])
@pytest.mark.parametrize("sample", IMAGELESS)
def test_samples_without_an_image_are_refused(name: str, sample: str) -> None:
    """No silent pass-through: the error names the transform, what it received and what to pass.
    (The mixing forms refuse non-tensor images through their own (images, labels) message, see
    ``tests/test_bad_input.py``.)"""
    make, received = IMAGELESS[sample]
    transform = EXAMPLES[name].build()
    cls = type(transform).__name__
    with pytest.raises(TypeError, match=rf"^{cls}: no image found in the sample \(got {received}\); pass image "
                                        r"tensors .*torch\.from_numpy\(array\) or v2\.ToImage\(\)"):
        transform(make())


@pytest.mark.parametrize("name", [name for name, case in EXAMPLES.items() if not case.mixes])
def test_images_next_to_other_items_are_transformed_as_alone(name: str) -> None:
    """torchvision's convention: the images are found among the other items of the sample, the
    other items come back as they were (the same objects), the images as they would alone."""
    images = tv_tensors.Image(make_images((3, 3, 12, 12)))
    mask = tv_tensors.Mask(torch.ones(3, 12, 12, dtype=torch.uint8))
    transform = EXAMPLES[name].build(generator=torch.Generator().manual_seed(3))
    alone = _call(EXAMPLES[name], transform, images)
    transform.generator.manual_seed(3)
    out = transform({"image": images, "label": 2, "name": "a", "mask": mask})
    out = out[0] if isinstance(out, tuple) else out
    assert out["label"] == 2 and out["name"] == "a"
    if transform.dense_targets == "keep":
        assert out["mask"] is mask
    else:  # moved with the pixels: a uniform mask stays what it was
        assert type(out["mask"]) is tv_tensors.Mask and torch.equal(out["mask"], mask)
    assert type(out["image"]) is tv_tensors.Image
    assert torch.equal(out["image"], alone) and not torch.equal(alone, images)


# --------------------------------------------------------------------------------------------
# channels_last.
# --------------------------------------------------------------------------------------------


def _run(case, x: torch.Tensor, **options) -> torch.Tensor:
    return _call(case, case.build(generator=torch.Generator().manual_seed(11), **options), x)


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8], ids=str)
def test_channels_last_in_channels_last_out(name: str, dtype: torch.dtype) -> None:
    """Every variant keeps the memory format (no hidden conversion for the next layer) and gives
    the contiguous batch's values bit for bit, also with half the batch selected."""
    case = VARIANTS[name]
    x = make_images((4, 3, 10, 13), dtype, seed=1)
    x_last = x.contiguous(memory_format=torch.channels_last)
    for ratio in (1.0, 0.5):
        out = _run(case, x_last, augmentation_ratio=ratio)
        assert out.is_contiguous(memory_format=torch.channels_last), f"{name} lost channels_last"
        assert torch.equal(out, _run(case, x, augmentation_ratio=ratio))


@pytest.mark.parametrize("name", VARIANTS)
def test_channels_last_frames_of_a_video_stay_channels_last(name: str) -> None:
    """A Video whose frames are channels_last keeps them so (the mixing transforms fold the frames
    into the channels, which made a contiguous copy), with the contiguous Video's values."""
    case = VARIANTS[name]
    frames = make_images((8, 3, 10, 13), torch.float32, seed=2)
    video = tv_tensors.Video(frames.reshape(2, 4, 3, 10, 13))
    video_last = tv_tensors.Video(frames.contiguous(memory_format=torch.channels_last).reshape(2, 4, 3, 10, 13))
    out = _run(case, video_last)
    assert out.reshape(8, 3, 10, 13).is_contiguous(memory_format=torch.channels_last), f"{name} lost channels_last"
    assert torch.equal(out, _run(case, video))


#: One configuration per family, among those whose eager output used to come back contiguous.
COMPILED = {"masking": ("erasing_multi", "inductor"), "pasting": ("cutswap", "inductor"),
            "mixing": ("cutmix", "inductor")}


@pytest.mark.compile
@pytest.mark.parametrize("family", COMPILED)
def test_channels_last_under_torch_compile(family: str) -> None:
    import torch._inductor.config as inductor_config

    name, backend = COMPILED[family]
    case = VARIANTS[name]
    assert case.spec.family == family
    torch._dynamo.reset()
    transform = case.build()
    compiled = torch.compile(transform, fullgraph=True, backend=backend)
    x = make_images((4, 3, 10, 13), seed=1)
    outs = []
    with inductor_config.patch(fallback_random=True):
        for images in (x.contiguous(memory_format=torch.channels_last), x):
            torch.manual_seed(0)
            outs.append(_call(case, compiled, images))
    assert outs[0].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(outs[0], outs[1])


# --------------------------------------------------------------------------------------------
# The mixing transforms as drop-ins for torchvision's CutMix / MixUp.
# --------------------------------------------------------------------------------------------

MIXING = [name for name, case in EXAMPLES.items() if case.mixes]


def _reference(name: str, images: torch.Tensor, labels: torch.Tensor):
    """The output of the plain ``(images, labels)`` call with the tests' seed."""
    transform = EXAMPLES[name].build(generator=torch.Generator().manual_seed(4))
    return transform(images, labels)


@pytest.mark.parametrize("name", MIXING)
def test_torchvision_gallery_collate_pattern(name: str) -> None:
    """torchvision's "How to use CutMix and MixUp": ``default_collate`` of (image, label) pairs,
    then the transform on the collated (images, labels); integer one-hot rows
    (``F.one_hot`` before collation, int64 ``(B, K)``) are read as soft labels."""
    from torch.utils.data import default_collate

    images = make_images((4, 3, 8, 8))
    indices = torch.tensor([0, 1, 2, 0])
    expected_images, expected_soft = _reference(name, images, indices)
    pairs = [(images[i], int(indices[i])) for i in range(4)]
    for batch in (default_collate(pairs),
                  default_collate([(x, torch.nn.functional.one_hot(torch.tensor(y), NUM_CLASSES)) for x, y in pairs])):
        assert batch[1].dtype == torch.int64
        out_images, soft = EXAMPLES[name].build(generator=torch.Generator().manual_seed(4))(batch)
        assert torch.equal(out_images, expected_images) and torch.equal(soft, expected_soft)


DICT_SAMPLES = {
    "image+LABELS": lambda x, y: {"image": x, "LABELS": y},
    "img+labels": lambda x, y: {"img": x, "labels": y},
    "pixel_values+labels": lambda x, y: {"pixel_values": x, "labels": y},
    "typed+class_label": lambda x, y: {"id": 3, "frames": tv_tensors.Image(x), "class_label": y},
}


@pytest.mark.parametrize("name", MIXING)
@pytest.mark.parametrize("sample", DICT_SAMPLES)
def test_dict_samples_with_other_keys(name: str, sample: str) -> None:
    """Images by type (a tv_tensors.Image under any key), else by key (images, image, img,
    pixel_values); labels under "labels" in any case, else the first key containing "label"
    (torchvision's heuristic); the other keys come back untouched."""
    images, labels = make_images((4, 3, 8, 8)), torch.tensor([0, 1, 2, 0])
    expected_images, expected_soft = _reference(name, images, labels)
    data = DICT_SAMPLES[sample](images, labels)
    out = EXAMPLES[name].build(generator=torch.Generator().manual_seed(4))(data)
    assert type(out) is dict and list(out) == list(data)
    image_key = next(k for k in data if data[k] is not labels and isinstance(data[k], torch.Tensor))
    label_key = next(k for k in data if data[k] is labels)
    assert torch.equal(out[image_key], expected_images) and torch.equal(out[label_key], expected_soft)
    assert all(out[k] is data[k] for k in data if k not in (image_key, label_key))


@pytest.mark.parametrize("keys", [("class_label", "Labels"), ("class_label", "label"), ("label", "labels"),
                                  ("LABEL", "target_label")])
@pytest.mark.parametrize("name", MIXING)
def test_several_label_keys_are_refused_unless_a_labels_getter_picks_one(name: str, keys: tuple[str, str]) -> None:
    """Several label-like keys: torchvision's CutMix mixes one ("labels" in any case first, else
    the first key containing "label") and leaves the other naming the unmixed images, silently;
    maskmix refuses the sample. A labels_getter says which one to mix: torchvision's choice then
    gives torchvision's result."""
    from torchvision.transforms import v2

    images = make_images((4, 3, 8, 8))

    def mixed(out: dict, data: dict) -> list[str]:
        return [k for k in keys if out[k] is not data[k] and out[k].ndim == 2]

    def sample(image: torch.Tensor) -> dict:
        return {"image": image, keys[0]: torch.tensor([0, 1, 2, 0]), keys[1]: torch.tensor([2, 2, 1, 0])}

    reference = sample(tv_tensors.Image(images))
    expected = mixed(v2.CutMix(num_classes=NUM_CLASSES)(reference), reference)
    data = sample(images)
    with pytest.raises(ValueError, match=r"the sample holds other labels \('.*'\) besides '.*'; the images and"):
        EXAMPLES[name].build()(data)
    chosen = EXAMPLES[name].build(labels_getter=lambda sample: sample[expected[0]])
    assert mixed(chosen(data), data) == expected and len(expected) == 1
    # Keys named after labels that hold no labels (a flag, a per-image weight) pass.
    flags = {"image": images, "labels": torch.tensor([0, 1, 2, 0]), "is_labeled": torch.ones(4, dtype=torch.bool),
             "label_weight": torch.rand(4)}
    out = EXAMPLES[name].build()(flags)
    assert out["is_labeled"] is flags["is_labeled"] and out["label_weight"] is flags["label_weight"]


@pytest.mark.parametrize("getter", [None, lambda sample: sample[1]["labels"]], ids=["default", "labels_getter"])
@pytest.mark.parametrize("name", MIXING)
def test_labels_in_a_targets_dict_as_torchvision_takes_them(name: str, getter) -> None:
    """torchvision's (images, targets) convention: the labels under a label key of the second item's
    dict, by its default heuristic or a labels_getter reaching into it (both were refused)."""
    images, labels = make_images((4, 3, 8, 8)), torch.tensor([0, 1, 2, 0])
    expected_images, expected_soft = _reference(name, images, labels)
    options = {} if getter is None else {"labels_getter": getter}
    sample = (images, {"labels": labels, "id": 3})
    out = EXAMPLES[name].build(generator=torch.Generator().manual_seed(4), **options)(sample)
    assert type(out) is tuple and list(out[1]) == ["labels", "id"] and out[1]["id"] == 3
    assert torch.equal(out[0], expected_images) and torch.equal(out[1]["labels"], expected_soft)
    assert sample[1]["labels"] is labels  # the input dict is untouched
    if getter is None:
        with pytest.raises(ValueError, match=r"got \(images, dict\) whose dict has keys \['id'\], none of them"):
            EXAMPLES[name].build()((images, {"id": 3}))
        with pytest.raises(ValueError, match=r"the sample holds other labels \('label_fine'\) besides 'labels'"):
            EXAMPLES[name].build()((images, {"labels": labels, "label_fine": labels}))


@pytest.mark.parametrize("name", MIXING)
def test_an_image_and_a_video_in_one_sample_are_refused(name: str) -> None:
    """An Image is mixed per image and a Video per clip: one draw cannot serve both (torchvision
    mixes both with one draw); the error says so instead of mixing one and ignoring the other."""
    sample = {"image": tv_tensors.Image(make_images((2, 3, 8, 8))),
              "video": tv_tensors.Video(make_images((2, 2, 3, 8, 8))), "labels": torch.tensor([0, 1])}
    cls = type(EXAMPLES[name].build()).__name__
    with pytest.raises(TypeError, match=rf"^{cls}: a sample must hold one image batch to mix; got tv_tensors "
                                        r"under keys \['image', 'video'\]"):
        EXAMPLES[name].build()(sample)


@pytest.mark.parametrize("layout", ["arguments", "tuple with a list", "nested dict"])
@pytest.mark.parametrize("name", MIXING)
def test_a_second_image_batch_anywhere_in_the_sample_is_refused(name: str, layout: str) -> None:
    """A second Image (a depth map, a mask kept as an Image) next to the images would pass through
    unmixed while the images get their partners' pixels: refused wherever it sits in the sample."""
    images, aux = tv_tensors.Image(make_images((4, 3, 8, 8))), tv_tensors.Image(make_images((4, 1, 8, 8), seed=1))
    labels = torch.arange(4) % NUM_CLASSES
    transform = EXAMPLES[name].build()
    cls = type(transform).__name__
    with pytest.raises(TypeError, match=rf"^{cls}: a sample must hold one image batch to mix; got 2 tv_tensors "
                                        r"\(Image, Image\)"):
        if layout == "arguments":
            transform(images, labels, aux)
        elif layout == "tuple with a list":
            transform((images, labels, [aux]))
        else:
            transform({"image": images, "label": labels, "extra": {"depth": aux}})


@pytest.mark.parametrize("name", MIXING)
def test_one_clip_is_refused_by_the_mixing_transforms(name: str) -> None:
    """A 4-D Video is one clip (T, C, H, W); mixing its frames with each other is not what a Video
    means (torchvision's CutMix/MixUp refuse it too): a batch of clips is asked for."""
    transform = EXAMPLES[name].build()
    cls = type(transform).__name__
    with pytest.raises(ValueError, match=rf"^{cls}: a Video to mix must be a batch of clips \(B, T, C, H, W\) .*"
                                         r"got shape \(4, 3, 8, 8\), one clip"):
        transform(tv_tensors.Video(make_images((4, 3, 8, 8))), torch.arange(4) % NUM_CLASSES)


@pytest.mark.parametrize("name", MIXING)
def test_clips_of_no_frame_pass_through_the_mixing_transforms(name: str) -> None:
    """Video(B, 0, C, H, W) holds no pixel, as an empty batch: the mixing transforms refused it
    with the shape the frames folded into the channels make, (B, 0, H, W), which the user never
    passed. It passes through, each clip keeping its own label row."""
    video, labels = tv_tensors.Video(torch.rand(2, 0, 3, 8, 8)), torch.tensor([0, 1])
    out, soft = EXAMPLES[name].build()(video, labels)
    assert out is video
    torch.testing.assert_close(soft, torch.eye(NUM_CLASSES)[labels])


# --------------------------------------------------------------------------------------------
# Videos: a batch of clips whose frames share every draw.
# --------------------------------------------------------------------------------------------

PER_IMAGE_VARIANTS = [name for name, case in VARIANTS.items() if not case.mixes]


@pytest.mark.parametrize("name", PER_IMAGE_VARIANTS)
def test_video_frames_of_a_clip_share_every_draw(name: str) -> None:
    """A clip of identical frames comes back with identical frames (the region, the fill colours
    or noise, the jitter: every random quantity is drawn per clip), and exactly round(0.5 * B)
    clips are changed, each in every frame; ``is_augmented`` has one entry per clip."""
    case = VARIANTS[name]
    clip = make_images((4, 1, 3, 12, 12), seed=5)
    video = tv_tensors.Video(clip.expand(4, 3, 3, 12, 12).clone())
    labelled = "return_labels" in inspect.signature(type(case.build())).parameters
    transform = case.build(augmentation_ratio=0.5, generator=torch.Generator().manual_seed(2),
                           **({"return_labels": True} if labelled else {}))
    result = transform(video)
    out = result[0] if labelled else result
    if labelled:  # one is_augmented label per clip
        assert torch.equal(result[1], (out != video).flatten(1).any(dim=1).to(torch.int64))
    assert type(out) is tv_tensors.Video and out.shape == video.shape
    assert torch.equal(out, out[:, :1].expand_as(out)), "the frames of a clip were changed differently"
    changed = (out != video).flatten(2).any(dim=2)  # (clips, frames)
    assert changed.sum() == 2 * 3 and torch.equal(changed.all(dim=1), changed.any(dim=1))


@pytest.mark.parametrize("name", [name for name, case in EXAMPLES.items() if not case.mixes])
@pytest.mark.parametrize("shape", [(3, 2, 3, 12, 12), (4, 3, 12, 12)], ids=["clips", "one_clip"])
def test_video_regions_are_shared_by_the_frames(name: str, shape: tuple[int, ...]) -> None:
    """Frames with different content: every frame of a clip is changed at the same pixels, a
    ``(T, C, H, W)`` Video being one clip; a plain 5-D tensor keeps one draw per image."""
    frames = make_images(shape, seed=6)
    video = tv_tensors.Video(frames)
    out = EXAMPLES[name].build(generator=torch.Generator().manual_seed(1))(video)
    out = out[0] if isinstance(out, tuple) else out
    changed = (out != video).any(dim=-3).reshape(-1, shape[-4], 12, 12)  # (clips, frames, H, W)
    assert changed.any() and torch.equal(changed, changed[:, :1].expand_as(changed))
    plain = EXAMPLES[name].build(generator=torch.Generator().manual_seed(1))(frames)
    plain = plain[0] if isinstance(plain, tuple) else plain
    changed = (plain != frames).any(dim=-3).reshape(-1, shape[-4], 12, 12)
    assert not torch.equal(changed, changed[:, :1].expand_as(changed)), "plain tensors: one draw per image"


GETTER_SAMPLES = {
    "tuple_second": (lambda x, y: (x, y), lambda s: s[1]),
    "tuple_third": (lambda x, y: (x, "id", y), lambda s: s[2]),
    "dict_target": (lambda x, y: {"target": y, "x": x}, lambda s: s["target"]),
    "typed_dict": (lambda x, y: {"t": y, "clip": tv_tensors.Image(x)}, lambda s: s["t"]),
}


@pytest.mark.parametrize("name", MIXING)
@pytest.mark.parametrize("sample", GETTER_SAMPLES)
def test_labels_getter_callable(name: str, sample: str) -> None:
    """torchvision's ``labels_getter``: the callable's labels are mixed and put back where they
    were; the images are found by type, by key, else as the first other tensor."""
    images, labels = make_images((4, 3, 8, 8)), torch.tensor([0, 1, 2, 0])
    expected_images, expected_soft = _reference(name, images, labels)
    make, getter = GETTER_SAMPLES[sample]
    data = make(images, labels)
    out = EXAMPLES[name].build(generator=torch.Generator().manual_seed(4), labels_getter=getter)(data)
    assert type(out) is type(data)
    keys = list(data) if isinstance(data, dict) else range(len(data))
    label_key = next(k for k in keys if data[k] is labels)
    image_key = next(k for k in keys if k != label_key and isinstance(data[k], torch.Tensor))
    assert torch.equal(out[image_key], expected_images) and torch.equal(out[label_key], expected_soft)
    assert all(out[k] is data[k] for k in keys if k not in (image_key, label_key))


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_labels_getter_validation(name: str) -> None:
    case = EXAMPLES[name]
    cls = case.spec.name
    with pytest.raises(TypeError, match=rf"^{cls}: labels_getter must be 'default' or a callable .*; got 'first'"):
        case.build(labels_getter="first")
    # A later assignment is checked as the constructor checks it ("labels" was taken for "default").
    built = case.build()
    with pytest.raises(TypeError, match=rf"^{cls}: labels_getter must be 'default' or a callable .*; got 'labels'"):
        built.labels_getter = "labels"
    assert built.labels_getter == "default"
    if not case.mixes:
        with pytest.raises(TypeError, match=rf"^{cls}: labels_getter applies to the transforms that mix labels"):
            case.build(labels_getter=lambda s: s[1])
        with pytest.raises(TypeError, match=rf"^{cls}: labels_getter applies to the transforms that mix labels"):
            built.labels_getter = lambda s: s[1]
        return
    x, y = make_images((4, 3, 8, 8)), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match=rf"^{cls}: labels_getter must return an item of the sample"):
        case.build(labels_getter=lambda s: s[1].clone())((x, y))
