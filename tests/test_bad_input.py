"""Bad and unusual call-time input for every torch transform (SPEC §3, "Errors").

Complements ``contracts/test_torch_conventions.py::test_call_time_validation`` (rank 2, five dtypes, PIL images,
generator device, mismatched sample shapes for the per-image transforms) and
``strategies/test_mixing_base.py::test_torch_call_time_errors`` (labels of CutMix/Mixup): every strategy (the
mixing ones and the mixed Cut-Thumbnail included) against every unsupported dtype and rank,
labels of the wrong length, dtype, rank or device and class indices out of range, NaN/inf pixels
(they propagate inside the image they belong to and never crash or leak into other images),
non-contiguous inputs (same output as the contiguous copy), inputs that require a gradient
(autograd flows through), and inputs that hold no image tensor (passed through, torchvision's
convention).
"""

from __future__ import annotations

import math
import re
from functools import partial

import numpy as np
import pytest
import torch
from helpers import make_images
from registry_cases import example_cases

import maskmix.torch as mm

#: Every strategy torch implements, in a configuration that changes every selected image of 2x2
#: or more pixels (the registry's ``example``), and the mixing form of those that have one.
CASES = example_cases("torch")
FACTORIES = {name: partial(case.build, "torch") for name, case in CASES.items()}
#: The ways of calling a mixing transform (CutMix, Mixup, the mixed Cut-Thumbnail...).
MIXING = {name: factory for name, factory in FACTORIES.items() if CASES[name].mixes}

BAD_DTYPES = [torch.bool, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.complex64,
              torch.complex128, torch.float8_e4m3fn]


def call(name: str, transform, images: torch.Tensor, labels: torch.Tensor | None = None):
    """Call a transform the normal way: images only, or (images, labels) for the mixing ones."""
    if name in MIXING:
        if labels is None:
            labels = torch.arange(images.shape[-4] if images.ndim >= 4 else 1) % 3
        return transform(images, labels)
    return transform(images)


def images_of(result):
    return result[0] if isinstance(result, tuple) else result


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=str)
def test_unsupported_dtypes_raise_type_error(name: str, dtype: torch.dtype) -> None:
    cls = FACTORIES[name]().__class__.__name__
    images = torch.zeros(4, 3, 8, 8).to(dtype)
    message = rf"^{cls}: images must have dtype float16, bfloat16, float32, float64 or uint8; got {dtype}$"
    with pytest.raises(TypeError, match=message):
        call(name, FACTORIES[name](), images)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("shape", [(), (5,), (8, 8)], ids=["rank0", "rank1", "rank2"])
def test_wrong_rank_raises_value_error(name: str, shape: tuple[int, ...]) -> None:
    cls = FACTORIES[name]().__class__.__name__
    if name in MIXING:
        layout = r"a batch \(\.\.\., B, C, H, W\) with at least 4"
    else:
        layout = r"\(\.\.\., C, H, W\) with at least 3"
    with pytest.raises(ValueError, match=rf"^{cls}: images must be {layout} dims; got shape {re_shape(shape)}$"):
        call(name, FACTORIES[name](), torch.rand(shape), torch.zeros(1, dtype=torch.int64))
    if name in MIXING:  # one (C, H, W) image is not a batch
        with pytest.raises(ValueError, match=rf"^{cls}: images must be {layout} dims; got shape \(3, 8, 8\)$"):
            call(name, FACTORIES[name](), torch.rand(3, 8, 8), torch.zeros(1, dtype=torch.int64))


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("shape", [(4, 0, 8, 8), (4, 3, 0, 8), (4, 3, 8, 0), (2, 3, 3, 0, 5)],
                         ids=["C0", "H0", "W0", "5d-H0"])
def test_images_without_pixels_raise_value_error(name: str, shape: tuple[int, ...]) -> None:
    """An empty batch passes through, but an image with no channel, row or column is a mistake."""
    cls = FACTORIES[name]().__class__.__name__
    message = rf"^{cls}: images must have at least one channel, row and column \(C, H, W >= 1\); got shape "
    with pytest.raises(ValueError, match=message + re_shape(shape) + "$"):
        call(name, FACTORIES[name](), torch.rand(shape), torch.arange(shape[0]) % 3)


@pytest.mark.parametrize("fill_method", ["noise", "random", "normal", "normal_per_patch"])
def test_drawn_fills_need_the_images_of_a_sample_to_agree(fill_method: str) -> None:
    """Random fill values are drawn once per call from the first image of a sample: an image of
    other channels or dtype beside it is refused (constant fills still work for such samples)."""
    from torchvision import tv_tensors

    rgb = tv_tensors.Image(torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8))
    depth = tv_tensors.Image(torch.rand(1, 16, 16))
    unit = tv_tensors.Image(torch.rand(3, 16, 16))
    erase = mm.RandomErasing(fill_method=fill_method)
    for first, other in ((rgb, depth), (rgb, unit), (unit, rgb)):
        with pytest.raises(ValueError, match=rf"^RandomErasing: fill_method='{fill_method}' draws its values "
                                             r"from the first image of a sample, so all its images must share"):
            erase(first, other)
    out_rgb, out_depth = mm.RandomErasing(fill_method="black")(rgb, depth)
    assert (out_rgb == 0).all(0).sum() > 0 and (out_depth == 0).all(0).sum() > 0


def re_shape(shape: tuple[int, ...]) -> str:
    return re.escape(str(tuple(shape)))


# --------------------------------------------------------------------------------------------
# Labels (every mixing transform).
# --------------------------------------------------------------------------------------------

LABEL_ERRORS = [
    (torch.tensor([0, 1, 2]), ValueError, "labels have batch size 3 but the images have 4"),
    (torch.full((5, 3), 1 / 3), ValueError, "labels have batch size 5 but the images have 4"),
    (torch.tensor([0, 1, 2, 3]), ValueError, r"class indices must lie in \[0, 3\); got \[3\]"),
    (torch.tensor([0, -2, 2, 1], dtype=torch.int8), ValueError, r"class indices must lie in \[0, 3\); got \[-2\]"),
    (torch.tensor([0, 200, 2, 9], dtype=torch.uint8), ValueError,
     r"class indices must lie in \[0, 3\); got \[200, 9\]"),
    (torch.tensor([0, 1, 2, 2**40]), ValueError, r"class indices must lie in \[0, 3\); got \[1099511627776\]"),
    (torch.ones(4, dtype=torch.bool), TypeError,
     "labels must be integer class indices or floating soft labels; got torch.bool"),
    (torch.ones(4, 3, dtype=torch.complex64), TypeError,
     "labels must be integer class indices or floating soft labels; got torch.complex64"),
    (torch.tensor(1), ValueError, r"class-index labels must have shape \(B,\); got shape \(\)"),
    (torch.zeros(4, 3, dtype=torch.int64), ValueError,
     r"class-index labels must have shape \(B,\); got shape \(4, 3\)"),
    (torch.ones(4), ValueError, r"one-hot/soft labels must have shape \(B, K\); got shape \(4,\)"),
    (torch.ones(4, 3, 1), ValueError, r"one-hot/soft labels must have shape \(B, K\); got shape \(4, 3, 1\)"),
    (torch.ones(4, 5), ValueError, "labels have 5 classes but num_classes is 3"),
    (torch.zeros(4, dtype=torch.int64, device="meta"), ValueError, "labels are on meta but the images are on cpu"),
    ([0, 1, 2, 0], TypeError, "labels must be a tensor; got list"),
    (np.arange(4), TypeError, "labels must be a tensor; got ndarray"),
    (None, TypeError, "labels must be a tensor; got NoneType"),
]


@pytest.mark.parametrize("name", MIXING)
@pytest.mark.parametrize(("labels", "error", "message"), LABEL_ERRORS,
                         ids=[f"{i}-{m[:24]}" for i, (_, _, m) in enumerate(LABEL_ERRORS)])
def test_bad_labels(name: str, labels, error: type, message: str) -> None:
    cls = FACTORIES[name]().__class__.__name__
    with pytest.raises(error, match=rf"^{cls}: {message}"):
        FACTORIES[name]()(make_images((4, 3, 8, 8)), labels)


@pytest.mark.parametrize("name", MIXING)
def test_labels_without_num_classes_and_low_precision_soft_labels(name: str) -> None:
    transform = FACTORIES[name]()
    cls = type(transform)
    kwargs = {"mix_images": True} if name.endswith("-mixed") else {}
    x = make_images((4, 3, 8, 8))
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: num_classes is required when labels are class indices$"):
        cls(**kwargs)(x, torch.arange(4) % 3)
    # Soft labels of any floating dtype are accepted: float32 out (float64 for float64), rows sum to 1.
    for dtype, out_dtype in [(torch.float16, torch.float32), (torch.bfloat16, torch.float32),
                             (torch.float32, torch.float32), (torch.float64, torch.float64)]:
        soft = torch.full((4, 3), 1 / 3, dtype=dtype)
        _, mixed = cls(**kwargs)(x, soft)
        assert mixed.dtype == out_dtype and mixed.shape == (4, 3)
        torch.testing.assert_close(mixed.sum(1), torch.ones(4, dtype=out_dtype), rtol=0, atol=1e-2)
    # NaN soft labels propagate (no check reads label values other than class indices).
    _, mixed = cls(**kwargs)(x, torch.full((4, 3), math.nan))
    assert mixed.isnan().all()


# --------------------------------------------------------------------------------------------
# NaN and inf pixels.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
def test_nan_and_inf_pixels_propagate_and_never_leak_into_other_images(name: str, dtype: torch.dtype) -> None:
    """Image 0 is all NaN, image 1 all +inf, image 2 has one NaN and one -inf pixel; the rest are
    finite. No crash; the finite images stay finite unless they took pixels from a non-finite
    partner (mixing); image 2's two non-finite pixels never multiply, except through the
    resampling filters of CutBlur and Cut-Thumbnail or a non-finite partner."""
    x = make_images((6, 3, 10, 12), dtype, seed=3)
    x[0] = math.nan
    x[1] = math.inf
    x[2, 1, 4, 5] = math.nan
    x[2, 0, 0, 0] = -math.inf
    generator = torch.Generator().manual_seed(0)
    transform = FACTORIES[name](generator=generator)
    captured = {}
    original = transform.make_params
    transform.make_params = lambda flat: captured.setdefault("params", original(flat))
    out = images_of(call(name, transform, x, torch.arange(6) % 3))
    assert out.shape == x.shape and out.dtype == x.dtype
    partner = captured["params"].get("partner")
    for b in range(3, 6):
        if partner is not None and int(partner[b]) < 3:
            continue  # mixed with a non-finite image: NaN/inf may come in, as they should
        assert torch.isfinite(out[b]).all(), f"image {b} got a non-finite value from elsewhere"
    # Image 2's NaN and -inf pixels are either still there or replaced by finite values of the
    # region (never spread around), except by the resampling filters, which spread them over their
    # support, and by a non-finite partner.
    if not name.startswith(("RandomCutBlur", "RandomCutThumbnail")) and not (partner is not None and partner[2] < 2):
        assert int((~torch.isfinite(out[2].float())).sum()) <= 2


@pytest.mark.parametrize("name", FACTORIES)
def test_uint8_results_are_the_float_results_rounded_and_saturated(name: str) -> None:
    """uint8 images through the same draws as their float32 values: the uint8 output is the float
    output rounded and saturated to [0, 255] (within one level: the float path is not rounded
    between steps), never wrapped around (bicubic overshoot next to 0/255 edges included)."""
    x = make_images((6, 2, 12, 12), torch.uint8, seed=7)
    x[:, :, :6] = 255
    x[:, :, :, :4] = 0

    def run(images):
        kwargs = {"pixels_range": (0.0, 255.0), "generator": torch.Generator().manual_seed(11)}
        if name.startswith("RandomCutThumbnail") or name == "RandomCutBlur":
            kwargs["resize_method"] = "bicubic"
        return images_of(call(name, FACTORIES[name](**kwargs), images, torch.arange(6) % 3))

    out = run(x)
    reference = run(x.float()).round().clamp(0, 255)
    assert out.dtype == torch.uint8
    assert (out.float() - reference).abs().max() <= 1


# --------------------------------------------------------------------------------------------
# Memory layouts, autograd, no image.
# --------------------------------------------------------------------------------------------

LAYOUTS = {
    "channels_last": lambda x: x.contiguous(memory_format=torch.channels_last),
    "transposed": lambda x: x.transpose(-1, -2).contiguous().transpose(-1, -2),
    "expanded": lambda x: x[:1].expand_as(x),
    "strided": lambda x: torch.stack([x, x], dim=-1)[..., 0],
    "sliced": lambda x: torch.cat([x, x], dim=0)[1::2],
}


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_non_contiguous_inputs_give_the_contiguous_result(name: str, layout: str) -> None:
    """Same seed, same values, another memory layout: bit-identical output, contiguous or not."""
    x = LAYOUTS[layout](make_images((4, 3, 9, 11), seed=2))
    assert not x.is_contiguous() or layout == "sliced"

    def run(images):
        return images_of(call(name, FACTORIES[name](generator=torch.Generator().manual_seed(5)), images))

    expected = run(x.contiguous())
    out = run(x)
    assert out.shape == x.shape
    assert torch.equal(out, expected), f"max diff {(out - expected).abs().max()}"


@pytest.mark.parametrize("name", FACTORIES)
def test_inputs_that_require_grad_keep_the_autograd_graph(name: str) -> None:
    """The output depends differentiably on the input: kept pixels have gradient 1."""
    x = make_images((4, 3, 9, 11), seed=4).requires_grad_()
    transform = FACTORIES[name](generator=torch.Generator().manual_seed(0), augmentation_ratio=0.5)
    result = call(name, transform, x, (torch.arange(4) % 3))
    out = images_of(result)
    assert out.requires_grad and out.grad_fn is not None
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    unchanged = (out.detach() == x.detach()).all(dim=1)
    # A pixel that comes back unchanged through where/gather gets at least its own gradient.
    assert (x.grad.sum(dim=1)[unchanged] > 0).all()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", [n for n in FACTORIES if n not in MIXING])
def test_inputs_without_an_image_tensor_pass_through(name: str) -> None:
    """torchvision's convention: items that are not image tensors (NumPy arrays, lists, numbers)
    are passed through untouched, as v2.RandomErasing does; the mixing transforms, which need
    ``(images, labels)``, raise instead."""
    array = np.zeros((2, 3, 4, 4), np.float32)
    transform = FACTORIES[name]()
    assert transform(array) is array
    assert transform([[0.5]]) == [[0.5]]
    assert transform(7) == 7


@pytest.mark.parametrize("name", MIXING)
def test_mixing_transforms_refuse_non_tensor_images(name: str) -> None:
    cls = FACTORIES[name]().__class__.__name__
    with pytest.raises(TypeError, match=rf"^{cls}: expected \(images, labels\).*; images are a ndarray$"):
        FACTORIES[name]()(np.zeros((4, 3, 8, 8), np.float32), torch.arange(4) % 3)
