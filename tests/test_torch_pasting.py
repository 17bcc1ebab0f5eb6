"""RandomCutBlur / cutblur_pair, RandomCutPaste and RandomCutSwap: pixel semantics checked against
independent references (F.interpolate, slicing, torchvision's colour functions). The SPEC §3
battery (layouts, dtypes, pass-through, fraction control, seeding, torch.compile, call-time
validation) runs on these transforms in ``contracts/test_torch_conventions.py``."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from helpers import changed_pixels, cutblur_low_resolution, make_images, reference_box_mask, run_with_params
from registry_cases import variant_cases
from torchvision import tv_tensors
from torchvision.transforms import v2

from maskmix.torch import RandomCutBlur, RandomCutBlurPair, cutblur_pair
from maskmix.torch._base import MaskMixTransform
from maskmix.torch.cutpaste import RandomCutPaste
from maskmix.torch.cutswap import RandomCutSwap

# The pasting configurations of the shared battery.
FACTORIES = {name: case.build for name, case in variant_cases("torch", mixing=False).items()}
NAMES = [name for name in FACTORIES if name.startswith(("cutblur", "cutpaste", "cutswap"))]
METHODS = ("nearest", "bilinear", "bicubic", "area")


def _resize(x: torch.Tensor, size: tuple[int, int], method: str) -> torch.Tensor:
    """The reference resize: plain F.interpolate, the semantics RandomCutBlur documents."""
    if method == "nearest":
        return F.interpolate(x, size=size, mode="nearest-exact")
    if method == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=method, antialias=True, align_corners=False)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: RandomCutBlur(blur_factor=1.0), r"RandomCutBlur: blur_factor must be a float in \(0, 1\)"),
        (lambda: RandomCutBlur(blur_factor=(0.5, 0.2)), r"RandomCutBlur: blur_factor must be .*got \(0.5, 0.2\)"),
        (lambda: RandomCutBlur(resize_method="lanczos"), r"RandomCutBlur: resize_method must be one of 'nearest'"),
        (lambda: RandomCutPaste(color_jitter=1.5), r"RandomCutPaste: color_jitter must be a float in \[0, 1\]"),
        (lambda: RandomCutPaste(patch_area=(0.2, 0.1)), r"RandomCutPaste: patch_area must be"),
        (lambda: RandomCutSwap(patch_aspect_ratio=0), r"RandomCutSwap: patch_aspect_ratio must be a float > 0"),
        (lambda: RandomCutSwap(augmentation_ratio=float("nan")), r"RandomCutSwap: augmentation_ratio must be"),
    ],
)
def test_constructor_validation(factory, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory()
    with pytest.raises(TypeError, match=r"RandomCutSwap: return_labels must be a bool; got 1"):
        RandomCutSwap(return_labels=1)


# ------------------------------------------------------------------------------------------------
# RandomCutBlur.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("blur_factor", [0.2, (0.05, 0.9)], ids=["fixed", "range"])
def test_cutblur_box_equals_the_interpolated_low_resolution_copy(method: str, blur_factor) -> None:
    x = make_images((6, 3, 21, 26), torch.float64, seed=2)
    t = RandomCutBlur(blur_factor=blur_factor, resize_method=method, generator=torch.Generator().manual_seed(1))
    out, p = run_with_params(t, x)
    height, width = x.shape[-2:]
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], (height, width))
    assert not (changed_pixels(x, out) & ~box).any(), "pixels outside the box changed"
    factor = p["blur_factor"].tolist()
    sizes = list(zip(p["low_height"].tolist(), p["low_width"].tolist(), strict=True))
    if isinstance(blur_factor, float):
        assert set(factor) == {blur_factor} and set(sizes) == {(4, 5)}  # round(4.2), round(5.2)
    else:
        assert all(0.05 <= f <= 0.9 for f in factor) and len(set(sizes)) > 1
    for b in range(x.shape[0]):
        low_h, low_w = sizes[b]
        assert low_h == max(1, math.floor(height * factor[b] + 0.5))
        assert low_w == max(1, math.floor(width * factor[b] + 0.5))
        reference = _resize(_resize(x[b : b + 1], (low_h, low_w), method), (height, width), method)[0]
        expected = torch.where(box[b], reference, x[b])
        torch.testing.assert_close(out[b], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.bfloat16], ids=str)
def test_cutblur_low_precision_dtypes_follow_the_float32_reference(dtype: torch.dtype) -> None:
    x = make_images((4, 3, 16, 20), dtype, seed=3)
    out, p = run_with_params(RandomCutBlur(blur_factor=(0.1, 0.6), generator=torch.Generator().manual_seed(0)), x)
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], (16, 20)).unsqueeze(1)
    for b in range(4):
        size = (int(p["low_height"][b]), int(p["low_width"][b]))
        reference = _resize(_resize(x[b : b + 1].float(), size, "bilinear"), (16, 20), "bilinear")[0]
        if dtype == torch.uint8:
            reference = reference.round().clamp(0, 255)
        expected = torch.where(box[b], reference.to(dtype), x[b])
        tolerance = 1 if dtype == torch.uint8 else 0.01
        assert (out[b].double() - expected.double()).abs().max() <= tolerance


def test_cutblur_resampling_tables_follow_the_image_size() -> None:
    # The per-size matrices are kept between eager calls; a new image size or dtype rebuilds them.
    t = RandomCutBlur(blur_factor=(0.1, 0.7), resize_method="bicubic", generator=torch.Generator().manual_seed(0))
    cases = [((3, 2, 12, 9), torch.float32), ((2, 2, 7, 15), torch.float32), ((3, 2, 12, 9), torch.float64)]
    for shape, dtype in cases:
        x = make_images(shape, dtype)
        p = t.make_params([x])
        fresh = RandomCutBlur(blur_factor=(0.1, 0.7), resize_method="bicubic")
        assert torch.equal(t.transform(x, p), fresh.transform(x, p))


def test_cutblur_tables_made_under_inference_mode_do_not_leak_into_training() -> None:
    """A preview under inference_mode (a gallery, a validation hook) must not break a later
    differentiable call: its cached tables would be inference tensors, which autograd cannot save."""
    t = RandomCutBlur()
    with torch.inference_mode():
        t(make_images((2, 3, 16, 16)))
    x = make_images((2, 3, 16, 16)).requires_grad_()
    t(x).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("method", METHODS)
def test_low_resolution_matches_interpolate_per_image(method: str) -> None:
    x = make_images((5, 2, 13, 17), torch.float64)
    low_height, low_width = torch.tensor([1, 4, 13, 7, 2]), torch.tensor([17, 3, 1, 9, 16])
    out = cutblur_low_resolution(x, low_height, low_width, method)
    for b in range(5):
        size = (int(low_height[b]), int(low_width[b]))
        expected = _resize(_resize(x[b : b + 1], size, method), (13, 17), method)[0]
        torch.testing.assert_close(out[b], expected, rtol=0, atol=1e-12)


def test_cutblur_boxes_follow_area_and_aspect() -> None:
    t = RandomCutBlur(patch_area=(0.1, 0.2), patch_aspect_ratio=(0.5, 2.0), generator=torch.Generator().manual_seed(0))
    p = t.make_params([torch.zeros(1, 1, 100, 100).expand(2000, 1, 100, 100)])
    area = (p["height"] * p["width"]).double() / 1e4
    aspect = p["height"].double() / p["width"].double()
    assert area.min() > 0.095 and area.max() < 0.21 and aspect.min() > 0.47 and aspect.max() < 2.1
    assert (p["top"] >= 0).all() and (p["top"] + p["height"] <= 100).all()
    assert (p["left"] >= 0).all() and (p["left"] + p["width"] <= 100).all()


def _pair_function(lr, hr, **options):
    return cutblur_pair(lr, hr, **options)


def _pair_transform(lr, hr, **options):
    return RandomCutBlurPair(**options)((lr, hr))


@pytest.mark.parametrize("form", [_pair_function, _pair_transform], ids=["function", "transform"])
@pytest.mark.parametrize("direction", ["hr_to_lr", "lr_to_hr", "random"])
def test_cutblur_pair_direction_semantics(direction: str, form) -> None:
    hr = make_images((64, 3, 16, 20), seed=4)
    lr = make_images((64, 3, 16, 20), seed=5)
    x, y = form(lr, hr, direction=direction, patch_area=(0.1, 0.3), generator=torch.Generator().manual_seed(0))
    assert y is hr and x.shape == hr.shape and x.dtype == hr.dtype
    from_hr = (x == hr).all(dim=1)
    from_lr = (x == lr).all(dim=1)
    assert (from_hr ^ from_lr).all(), "every pixel comes from exactly one of the pair"
    kinds = set()
    for b in range(64):
        # The pasted pixels (the minority) form one rectangle of about 10-30% of the image.
        hr_pasted = bool(from_lr[b].sum() > from_hr[b].sum())
        inside = from_hr[b] if hr_pasted else from_lr[b]
        rows, cols = inside.any(dim=1).nonzero().flatten(), inside.any(dim=0).nonzero().flatten()
        h, w = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        assert int(inside.sum()) == h * w and 0.08 <= h * w / 320 <= 0.33
        kinds.add("hr_to_lr" if hr_pasted else "lr_to_hr")
    assert kinds == ({"hr_to_lr", "lr_to_hr"} if direction == "random" else {direction})


def test_cutblur_pair_options_types_and_validation() -> None:
    hr = tv_tensors.Image(make_images((2, 4, 3, 8, 8), torch.uint8))
    lr = tv_tensors.Image(make_images((2, 4, 3, 8, 8), torch.uint8, seed=1))
    x, y = cutblur_pair(lr, hr, augmentation_ratio=0.5)
    assert isinstance(x, tv_tensors.Image) and y is hr and x.shape == (2, 4, 3, 8, 8)
    changed = changed_pixels(lr.reshape(8, 3, 8, 8), x.reshape(8, 3, 8, 8)).flatten(1).any(1)
    assert int(changed.sum()) == 4
    assert torch.equal(cutblur_pair(lr, hr, augmentation_ratio=0.0)[0], lr)
    first, second = (cutblur_pair(lr, hr, generator=torch.Generator().manual_seed(1))[0] for _ in range(2))
    assert torch.equal(first, second)
    assert cutblur_pair(torch.zeros(0, 3, 4, 4), torch.zeros(0, 3, 4, 4))[0].shape == (0, 3, 4, 4)
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    cases = [
        (dict(direction="up"), ValueError, r"cutblur_pair: direction must be one of 'random', 'hr_to_lr', 'lr_to_hr'"),
        (dict(patch_area=1.5), ValueError, r"cutblur_pair: patch_area must be a float in \(0, 1\)"),
        (dict(patch_aspect_ratio=(2, 1)), ValueError, r"cutblur_pair: patch_aspect_ratio must be"),
        (dict(augmentation_ratio=2), ValueError, r"cutblur_pair: augmentation_ratio must be a float in \[0, 1\]"),
        (dict(bernoulli_mix="yes"), TypeError, r"cutblur_pair: bernoulli_mix must be a bool"),
        (dict(generator=3), TypeError, r"cutblur_pair: generator must be a torch.Generator or None; got 3"),
    ]
    for kwargs, exc, match in cases:
        with pytest.raises(exc, match=match):
            cutblur_pair(a, b, **kwargs)
    with pytest.raises(ValueError, match=r"cutblur_pair: lr_upsampled and hr must have the same shape"):
        cutblur_pair(a, torch.rand(2, 3, 16, 16))
    with pytest.raises(TypeError, match=r"cutblur_pair: lr_upsampled and hr must have the same dtype"):
        cutblur_pair(a, b.double())
    with pytest.raises(TypeError, match=r"cutblur_pair: hr must have dtype float16, .*; got torch.int32"):
        cutblur_pair(a, b.int())
    with pytest.raises(ValueError, match=r"cutblur_pair: lr_upsampled must be \(\.\.\., C, H, W\) with at least 3"):
        cutblur_pair(a[0, 0], b[0, 0])
    with pytest.raises(TypeError, match=r"cutblur_pair: hr must be a tensor"):
        cutblur_pair(a, b.numpy())


def test_cutblur_pair_transform_runs_the_function() -> None:
    """RandomCutBlurPair is cutblur_pair as a v2 transform: same draws, same pixels, either call form."""
    hr = tv_tensors.Image(make_images((6, 3, 12, 10), torch.uint8, seed=2))
    lr = tv_tensors.Image(make_images((6, 3, 12, 10), torch.uint8, seed=3))
    options = dict(patch_area=(0.1, 0.4), direction="random", augmentation_ratio=0.5, bernoulli_mix=True)
    expected, _ = cutblur_pair(lr, hr, **options, generator=torch.Generator().manual_seed(7))
    transform = RandomCutBlurPair(**options, generator=torch.Generator().manual_seed(7))
    x, y = transform((lr, hr))
    assert y is hr and isinstance(x, tv_tensors.Image) and torch.equal(x, expected)
    x2, y2 = v2.Compose([v2.Identity(), RandomCutBlurPair(**options, generator=torch.Generator().manual_seed(7))])(
        lr, hr
    )
    assert y2 is hr and torch.equal(x2, expected)
    single, _ = RandomCutBlurPair(direction="hr_to_lr")(lr[0], hr[0])
    assert single.shape == lr[0].shape


def test_cutblur_pair_transform_checks_like_the_keras_layer() -> None:
    """Same checks and messages as maskmix.keras.RandomCutBlurPair (and cutblur_pair's)."""
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    transform = RandomCutBlurPair()
    cases = [
        ((a,), TypeError, "expected a pair (lr_upsampled, hr); got Tensor"),
        (((a, b, a),), TypeError, "expected a pair (lr_upsampled, hr); got tuple"),
        ((a, torch.rand(2, 3, 16, 16)), ValueError, "lr_upsampled and hr must have the same shape (up-sample the LR"),
        ((a, b.double()), TypeError, "lr_upsampled and hr must have the same dtype; got torch.float32 and torch.f"),
        ((a.int(), b.int()), TypeError, "lr_upsampled must have dtype float16, bfloat16, float32, float64 or uint8"),
        ((a, b.numpy()), TypeError, "hr must be a tensor (..., C, H, W); got ndarray"),
        ((a[0, 0], b[0, 0]), ValueError, "lr_upsampled must be (..., C, H, W) with at least 3 dims"),
    ]
    for inputs, error, message in cases:
        with pytest.raises(error, match="RandomCutBlurPair: " + re.escape(message)):
            transform(*inputs)
    with pytest.raises(ValueError, match="RandomCutBlurPair: direction must be one of 'random', 'hr_to_lr'"):
        RandomCutBlurPair(direction="both")
    with pytest.raises(TypeError, match=r"RandomCutBlurPair: generator must be a torch\.Generator or None; got 3"):
        RandomCutBlurPair(generator=3)


@pytest.mark.compile
def test_cutblur_pair_compiles_fullgraph() -> None:
    torch._dynamo.reset()
    lr, hr = make_images((4, 3, 16, 16)), make_images((4, 3, 16, 16), seed=1)
    pair = lambda a, b: cutblur_pair(a, b, augmentation_ratio=0.5)  # noqa: E731
    compiled = torch.compile(pair, fullgraph=True, backend="aot_eager")
    torch.manual_seed(0)
    eager = pair(lr, hr)[0]
    torch.manual_seed(0)
    assert torch.equal(compiled(lr, hr)[0], eager)
    transform = RandomCutBlurPair(augmentation_ratio=0.5)
    compiled = torch.compile(transform, fullgraph=True, backend="aot_eager")
    torch.manual_seed(0)
    assert torch.equal(compiled((lr, hr))[0], eager)


# ------------------------------------------------------------------------------------------------
# RandomCutPaste.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8], ids=str)
def test_cutpaste_pastes_the_original_source_pixels(dtype: torch.dtype) -> None:
    x = make_images((200, 2, 9, 11), dtype, seed=6)
    # Large patches: source and destination overlap often.
    t = RandomCutPaste(patch_area=(0.2, 0.6), generator=torch.Generator().manual_seed(0))
    out, p = run_with_params(t, x)
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], (9, 11))
    assert torch.equal(out.permute(1, 0, 2, 3)[:, ~box], x.permute(1, 0, 2, 3)[:, ~box])
    overlapping = 0
    for b, (h, w, st, sl, dt, dl) in enumerate(
        zip(*(p[k].tolist() for k in ("height", "width", "src_top", "src_left", "top", "left")), strict=True)
    ):
        assert 0 <= min(st, sl, dt, dl) and max(st, dt) + h <= 9 and max(sl, dl) + w <= 11
        assert (st, sl) != (dt, dl), "the destination differs from the source"
        assert torch.equal(out[b, :, dt : dt + h, dl : dl + w], x[b, :, st : st + h, sl : sl + w])
        overlapping += abs(st - dt) < h and abs(sl - dl) < w
    assert overlapping > 20


def test_cutpaste_positions_cover_the_image() -> None:
    t = RandomCutPaste(patch_area=0.25, patch_aspect_ratio=1.0, generator=torch.Generator().manual_seed(0))
    p = t.make_params([torch.zeros(1, 1, 4, 4).expand(4000, 1, 4, 4)])  # 2x2 patches, 3x3 positions
    assert set(p["height"].tolist()) == {2} and set(p["width"].tolist()) == {2}
    pairs = torch.stack([p["src_top"] * 3 + p["src_left"], p["top"] * 3 + p["left"]], 1)
    counts = torch.zeros(9, 9).index_put_((pairs[:, 0], pairs[:, 1]), torch.ones(4000), accumulate=True)
    assert counts.diagonal().sum() == 0
    off_diagonal = counts[~torch.eye(9, dtype=torch.bool)]
    # 72 ordered pairs, 55.6 expected each (sd ~7.4).
    assert off_diagonal.min() > 25 and off_diagonal.max() < 90
    # A patch as large as the image has a single position: it is pasted onto itself.
    p = t.make_params([torch.zeros(1, 1, 1, 1).expand(5, 1, 1, 1)])
    assert p["top"].eq(p["src_top"]).all() and p["left"].eq(p["src_left"]).all()


@pytest.mark.parametrize("channels", [3, 1])
def test_cutpaste_color_jitter_matches_torchvision_on_the_patch(channels: int) -> None:
    x = make_images((16, channels, 12, 14), seed=7)
    t = RandomCutPaste(color_jitter=0.4, patch_area=(0.2, 0.4), generator=torch.Generator().manual_seed(2))
    out, p = run_with_params(t, x)
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], (12, 14))
    changed = changed_pixels(x, out)
    assert not (changed & ~box).any() and changed.flatten(1).any(1).all()
    assert out.min() >= 0 and out.max() <= 1
    for b in range(16):
        h, w, st, sl, dt, dl = (int(p[k][b]) for k in ("height", "width", "src_top", "src_left", "top", "left"))
        factors = [float(p[k][b]) for k in ("brightness", "contrast", "saturation")]
        assert all(0.6 <= f <= 1.4 for f in factors)
        patch = x[b, :, st : st + h, sl : sl + w]
        patch = TF.adjust_contrast(TF.adjust_brightness(patch, factors[0]), factors[1])
        if channels == 3:
            patch = TF.adjust_saturation(patch, factors[2])
        torch.testing.assert_close(out[b, :, dt : dt + h, dl : dl + w], patch, rtol=0, atol=2e-6)


def test_cutpaste_color_jitter_respects_pixels_range_and_uint8() -> None:
    x = make_images((8, 3, 12, 12), torch.uint8)
    out = RandomCutPaste(color_jitter=1.0)(x)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    normalised = make_images((8, 3, 12, 12)) * 4 - 2
    out = RandomCutPaste(color_jitter=1.0, pixels_range=(-2.0, 2.0))(normalised)
    assert out.min() >= -2.0 and out.max() <= 2.0


@pytest.mark.parametrize("size", [(1, 1), (1, 2), (2, 1), (1, 5)])
def test_cutpaste_labels_only_images_whose_pixels_moved(size: tuple[int, int]) -> None:
    """On thin images the patch may fill the image (one position: nothing moves); such an image
    is not augmented. is_augmented must be exactly the images that changed."""
    x = torch.arange(64 * size[0] * size[1], dtype=torch.float32).view(64, 1, *size)  # distinct pixels
    t = RandomCutPaste(return_labels=True, patch_aspect_ratio=(0.01, 100.0), generator=torch.Generator().manual_seed(3))
    out, labels = t(x)
    moved = changed_pixels(x, out).flatten(1).any(1)
    assert torch.equal(labels.bool(), moved)
    if size == (1, 1):
        assert not moved.any()


@pytest.mark.parametrize("cls", [RandomCutPaste, RandomCutSwap])
def test_return_labels(cls: type[MaskMixTransform]) -> None:
    x = make_images((10, 3, 12, 12))
    t = cls(return_labels=True, augmentation_ratio=0.3, generator=torch.Generator().manual_seed(0))
    out, labels = t(x)
    assert labels.dtype == torch.int64 and labels.shape == (10,)
    assert torch.equal(labels.bool(), changed_pixels(x, out).flatten(1).any(1)) and int(labels.sum()) == 3
    out, labels = cls(return_labels=True)(x[0])
    assert out.shape == (3, 12, 12) and labels.shape == () and int(labels) == 1
    out, labels = cls(return_labels=True, augmentation_ratio=0.5)(make_images((2, 3, 3, 8, 8)))
    assert labels.shape == (2, 3) and int(labels.sum()) == 3
    image, mask = tv_tensors.Image(x), tv_tensors.Mask(torch.zeros(10, 12, 12, dtype=torch.uint8))
    (out_image, out_mask), labels = cls(return_labels=True)(image, mask)
    assert isinstance(out_image, tv_tensors.Image) and out_mask is mask and labels.tolist() == [1] * 10
    out, labels = cls(return_labels=True)(torch.zeros(0, 3, 8, 8))
    assert out.shape == (0, 3, 8, 8) and labels.shape == (0,)
    assert not isinstance(cls()(x), tuple)
    # A sample without any image has nothing to label.
    assert cls(return_labels=True)(mask) == (mask, None)


# ------------------------------------------------------------------------------------------------
# RandomCutSwap.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.uint8], ids=str)
def test_cutswap_exchanges_the_two_regions_exactly(dtype: torch.dtype) -> None:
    x = make_images((100, 3, 10, 13), dtype, seed=8)
    out, p = run_with_params(RandomCutSwap(generator=torch.Generator().manual_seed(0)), x)
    a = reference_box_mask(p["top_a"], p["left_a"], p["height"], p["width"], (10, 13))
    b = reference_box_mask(p["top_b"], p["left_b"], p["height"], p["width"], (10, 13))
    assert not (a & b).any()
    outside = ~(a | b)
    assert torch.equal(out.permute(1, 0, 2, 3)[:, outside], x.permute(1, 0, 2, 3)[:, outside])
    for i, (h, w, ta, la, tb, lb) in enumerate(
        zip(*(p[k].tolist() for k in ("height", "width", "top_a", "left_a", "top_b", "left_b")), strict=True)
    ):
        assert torch.equal(out[i, :, ta : ta + h, la : la + w], x[i, :, tb : tb + h, lb : lb + w])
        assert torch.equal(out[i, :, tb : tb + h, lb : lb + w], x[i, :, ta : ta + h, la : la + w])


@pytest.mark.parametrize(
    ("size", "area"),
    [((2, 2), (0.05, 0.9)), ((1, 9), (0.3, 0.9)), ((9, 1), 0.5), ((3, 5), (0.2, 0.9)), ((4, 4), 0.25),
     ((24, 17), (0.05, 0.3)), ((10, 10), 0.9), ((1, 2), 0.5)],
)
def test_cutswap_patches_never_overlap_and_stay_inside(size: tuple[int, int], area) -> None:
    height, width = size
    t = RandomCutSwap(patch_area=area, generator=torch.Generator().manual_seed(0))
    p = t.make_params([torch.zeros(1, 1, height, width).expand(5000, 1, height, width)])
    h, w = p["height"], p["width"]
    assert ((2 * h <= height) | (2 * w <= width)).all() and (h >= 1).all() and (w >= 1).all()
    for top, left in (("top_a", "left_a"), ("top_b", "left_b")):
        assert (p[top] >= 0).all() and (p[top] + h <= height).all()
        assert (p[left] >= 0).all() and (p[left] + w <= width).all()
    disjoint = ((p["top_a"] - p["top_b"]).abs() >= h) | ((p["left_a"] - p["left_b"]).abs() >= w)
    assert disjoint.all()
    assert p["selected"].all()


def test_cutswap_pair_positions_are_uniform() -> None:
    # 2x2 patches in 4x4 images: every disjoint ordered pair of positions is equally likely given A;
    # A is uniform over the 8 corners that leave room for B (all but the centre (1, 1)).
    t = RandomCutSwap(patch_area=0.25, patch_aspect_ratio=1.0, generator=torch.Generator().manual_seed(0))
    p = t.make_params([torch.zeros(1, 1, 4, 4).expand(16000, 1, 4, 4)])
    a = p["top_a"] * 3 + p["left_a"]
    counts_a = torch.bincount(a, minlength=9).double()
    assert counts_a[4] == 0 and (counts_a[counts_a > 0] - 2000).abs().max() < 5 * 41.8
    # Given A at the corner (0, 0), B is uniform over the 5 positions not overlapping it.
    corner = a == 0
    b = (p["top_b"] * 3 + p["left_b"])[corner]
    counts_b = torch.bincount(b, minlength=9)
    assert set(counts_b.nonzero().flatten().tolist()) == {2, 5, 6, 7, 8}
    expected = corner.sum() / 5
    assert (counts_b[counts_b > 0] - expected).abs().max() < 5 * math.sqrt(expected * 0.8)


def test_cutswap_sizes_follow_area_and_aspect_and_shrink_when_needed() -> None:
    gen = torch.Generator().manual_seed(0)
    t = RandomCutSwap(patch_area=(0.05, 0.25), patch_aspect_ratio=(0.5, 2.0), generator=gen)
    p = t.make_params([torch.zeros(1, 1, 100, 100).expand(2000, 1, 100, 100)])
    area = (p["height"] * p["width"]).double() / 1e4
    aspect = p["height"].double() / p["width"].double()
    assert area.min() > 0.045 and area.max() < 0.26 and aspect.min() > 0.47 and aspect.max() < 2.1
    assert area.mean() > 0.13  # ~uniform over the range: no candidate was rejected
    # 90% of the image cannot hold two patches: the side whose halving keeps more is halved.
    p = RandomCutSwap(patch_area=0.9, patch_aspect_ratio=2.0).make_params([torch.zeros(3, 1, 10, 10)])
    assert p["height"].tolist() == [10] * 3 and p["width"].tolist() == [5] * 3  # 13x7 -> 10x7 -> 10x5
    p = RandomCutSwap(patch_area=0.9, patch_aspect_ratio=0.1).make_params([torch.zeros(2, 1, 1, 10)])
    assert p["height"].tolist() == [1, 1] and p["width"].tolist() == [5, 5]


@pytest.mark.parametrize("name", NAMES)
def test_values_outside_range_survive_outside_the_region(name: str) -> None:
    x = torch.full((6, 3, 16, 16), 7.5)
    x[:, :, ::2] = -3.25
    x[:, 0, 0, 1] = float("nan")
    out, p = run_with_params(FACTORIES[name](), x)
    if name.startswith("cutswap"):
        region = reference_box_mask(p["top_a"], p["left_a"], p["height"], p["width"], (16, 16))
        region |= reference_box_mask(p["top_b"], p["left_b"], p["height"], p["width"], (16, 16))
    else:
        region = reference_box_mask(p["top"], p["left"], p["height"], p["width"], (16, 16))
    outside = ~region.unsqueeze(1).expand_as(x)
    torch.testing.assert_close(out[outside], x[outside], rtol=0, atol=0, equal_nan=True)


def test_cutswap_one_by_one_images_pass_through_unaugmented() -> None:
    x = make_images((3, 3, 1, 1))
    out, labels = RandomCutSwap(return_labels=True)(x)
    assert torch.equal(out, x) and labels.tolist() == [0, 0, 0]
    out, labels = RandomCutSwap(return_labels=True)(make_images((3, 3, 1, 2)))
    assert labels.tolist() == [1, 1, 1] and torch.equal(out[..., 0], make_images((3, 3, 1, 2))[..., 1])


@pytest.mark.parametrize("shape", [(3, 3, 1, 1), (2, 1, 1, 5), (2, 3, 4, 1)])
def test_cutpaste_jitter_leaves_an_unmovable_patch_alone(shape) -> None:
    """A patch that fills its image is not augmented: with colour jitter (and the whole batch
    selected, where the move skips the selection) its pixels must not be jittered either."""
    from maskmix.torch import RandomCutPaste

    x = torch.rand(shape)
    t = RandomCutPaste(patch_area=0.99, patch_aspect_ratio=(0.01, 100.0), color_jitter=1.0, return_labels=True)
    for seed in range(5):
        torch.manual_seed(seed)
        out, is_augmented = t(x)
        unmoved = is_augmented == 0
        assert torch.equal(out[unmoved], x[unmoved]), "an image flagged as not augmented changed"
