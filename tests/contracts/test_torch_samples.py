"""torch sample conventions over the registry: what a sample may hold and the memory format.

A sample in which no image is found (a NumPy array, nested lists, numbers, only non-image
tv_tensors) is refused with a ``TypeError`` that says what to pass instead, as torchvision
refuses it ("No image or video was found in the sample"); a sample holding images next to other
items (numbers, strings, masks, boxes) transforms its images as they would be alone and returns the
other items untouched. A ``channels_last`` batch comes back ``channels_last``, with the values of
the contiguous batch's output for the same seed, eager and compiled.
"""

from __future__ import annotations

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
    assert out["label"] == 2 and out["name"] == "a" and out["mask"] is mask
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
