"""CutBlur (``RandomCutBlur``) and its super-resolution pairs (``cutblur_pair``,
``RandomCutBlurPair``), torch and Keras: the box is the down-then-up resize of the image
(``references.resize``: nearest, bilinear, bicubic, area) and nothing else changes; low-resolution
sizes, boxes, dtypes; the pairs paste one rectangle in the chosen direction and check their
inputs alike in both frameworks.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import json
import math
import re

import keras
import numpy as np
import pytest
import references
import tensorflow as tf
import torch
from helpers import (
    changed_pixels,
    cutblur_low_resolution,
    make_images,
    reference_box_mask,
    reference_resize,
    run_with_params,
)
from torchvision import tv_tensors
from torchvision.transforms import v2

from maskmix.geometry import low_resolution_size_range
from maskmix.keras import RandomCutBlur as keras_RandomCutBlur
from maskmix.keras import RandomCutBlurPair as keras_RandomCutBlurPair
from maskmix.keras import cutblur_pair as keras_cutblur_pair
from maskmix.torch import RandomCutBlur, RandomCutBlurPair, cutblur_pair

METHODS = ("nearest", "bilinear", "bicubic", "area")


# --------------------------------------------------------------------------------------------
# torch: RandomCutBlur.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("blur_factor", [0.2, (0.05, 0.9)], ids=["fixed", "range"])
def test_torch_cutblur_box_equals_the_reference_low_resolution_copy(method: str, blur_factor) -> None:
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
        reference = reference_resize(reference_resize(x[b], (low_h, low_w), method), (height, width), method)
        expected = torch.where(box[b], reference, x[b])
        torch.testing.assert_close(out[b], expected, rtol=0, atol=1e-12)


def test_torch_cutblur_non_finite_values_poison_their_channel_of_the_rectangle_as_documented() -> None:
    """The docstring's account (the resampling is matrix products: 0 * NaN is NaN): one NaN
    outside the rectangle makes that channel's rectangle NaN; the other channels and every pixel
    outside the rectangle are as they were."""
    x = make_images((2, 3, 24, 24), torch.float32, seed=4)
    x[:, 1, 0, 0] = math.nan
    t = RandomCutBlur(patch_area=0.2, patch_aspect_ratio=1.0, generator=torch.Generator().manual_seed(2))
    out, p = run_with_params(t, x)
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], (24, 24))
    for b in range(2):
        assert torch.isnan(out[b, 1][box[b]]).all()
        assert not torch.isnan(out[b, [0, 2]][:, box[b]]).any()
        torch.testing.assert_close(out[b][:, ~box[b]], x[b][:, ~box[b]], equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.bfloat16], ids=str)
def test_torch_cutblur_low_precision_dtypes_follow_the_float32_reference(dtype: torch.dtype) -> None:
    x = make_images((4, 3, 16, 20), dtype, seed=3)
    out, p = run_with_params(RandomCutBlur(blur_factor=(0.1, 0.6), generator=torch.Generator().manual_seed(0)), x)
    box = reference_box_mask(p["top"], p["left"], p["height"], p["width"], (16, 20)).unsqueeze(1)
    for b in range(4):
        size = (int(p["low_height"][b]), int(p["low_width"][b]))
        reference = reference_resize(reference_resize(x[b].float(), size, "bilinear"), (16, 20), "bilinear")
        if dtype == torch.uint8:
            reference = reference.round().clamp(0, 255)
        expected = torch.where(box[b], reference.to(dtype), x[b])
        tolerance = 1 if dtype == torch.uint8 else 0.01
        assert (out[b].double() - expected.double()).abs().max() <= tolerance


def test_torch_cutblur_resampling_tables_follow_the_image_size() -> None:
    # The per-size matrices are kept between eager calls; a new image size or dtype rebuilds them.
    t = RandomCutBlur(blur_factor=(0.1, 0.7), resize_method="bicubic", generator=torch.Generator().manual_seed(0))
    cases = [((3, 2, 12, 9), torch.float32), ((2, 2, 7, 15), torch.float32), ((3, 2, 12, 9), torch.float64)]
    for shape, dtype in cases:
        x = make_images(shape, dtype)
        p = t.make_params([x])
        fresh = RandomCutBlur(blur_factor=(0.1, 0.7), resize_method="bicubic")
        assert torch.equal(t.transform(x, p), fresh.transform(x, p))


def test_torch_cutblur_tables_made_under_inference_mode_do_not_leak_into_training() -> None:
    """A preview under inference_mode (a gallery, a validation hook) must not break a later
    differentiable call: its cached tables would be inference tensors, which autograd cannot save."""
    t = RandomCutBlur()
    with torch.inference_mode():
        t(make_images((2, 3, 16, 16)))
    x = make_images((2, 3, 16, 16)).requires_grad_()
    t(x).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("method", METHODS)
def test_torch_low_resolution_matches_the_reference_per_image(method: str) -> None:
    x = make_images((5, 2, 13, 17), torch.float64)
    low_height, low_width = torch.tensor([1, 4, 13, 7, 2]), torch.tensor([17, 3, 1, 9, 16])
    out = cutblur_low_resolution(x, low_height, low_width, method)
    for b in range(5):
        size = (int(low_height[b]), int(low_width[b]))
        expected = reference_resize(reference_resize(x[b], size, method), (13, 17), method)
        torch.testing.assert_close(out[b], expected, rtol=0, atol=1e-12)


def test_torch_cutblur_boxes_follow_area_and_aspect() -> None:
    t = RandomCutBlur(patch_area=(0.1, 0.2), patch_aspect_ratio=(0.5, 2.0), generator=torch.Generator().manual_seed(0))
    p = t.make_params([torch.zeros(1, 1, 100, 100).expand(2000, 1, 100, 100)])
    area = (p["height"] * p["width"]).double() / 1e4
    aspect = p["height"].double() / p["width"].double()
    assert area.min() > 0.095 and area.max() < 0.21 and aspect.min() > 0.47 and aspect.max() < 2.1
    assert (p["top"] >= 0).all() and (p["top"] + p["height"] <= 100).all()
    assert (p["left"] >= 0).all() and (p["left"] + p["width"] <= 100).all()



def test_torch_cutblur_low_resolution_sizes_stay_in_the_range_of_the_factor() -> None:
    # 0.01 x 20 rounds to 0 pixels: the sizes are clamped to at least 1 (and to the range's ends).
    t = RandomCutBlur(blur_factor=(0.01, 0.3), generator=torch.Generator().manual_seed(0))
    p = t.make_params([torch.zeros(1, 1, 20, 30).expand(500, 1, 20, 30)])
    for key, size in (("low_height", 20), ("low_width", 30)):
        low, high = low_resolution_size_range((0.01, 0.3), size)
        assert p[key].min() == low == 1 and p[key].max() == high
        expected = torch.floor(p["blur_factor"] * size + 0.5).clamp(low, high).to(torch.int64)
        assert torch.equal(p[key], expected)

# --------------------------------------------------------------------------------------------
# torch: cutblur_pair and RandomCutBlurPair.
# --------------------------------------------------------------------------------------------


def _pair_function(lr, hr, **options):
    return cutblur_pair(lr, hr, **options)


def _pair_transform(lr, hr, **options):
    return RandomCutBlurPair(**options)((lr, hr))


@pytest.mark.parametrize("form", [_pair_function, _pair_transform], ids=["function", "transform"])
@pytest.mark.parametrize("direction", ["hr_to_lr", "lr_to_hr", "random"])
def test_torch_cutblur_pair_direction_semantics(direction: str, form) -> None:
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


def test_torch_cutblur_pair_options_types_and_validation() -> None:
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
    # A channels-last pair (stacked from NumPy) would be cut along the wrong axes.
    for call in (cutblur_pair, lambda lr, hr: RandomCutBlurPair()((lr, hr))):
        with pytest.raises(ValueError, match=r"(cutblur_pair|RandomCutBlurPair): lr_upsampled of shape "
                                             r"\(2, 8, 8, 3\) looks channels-last \(\.\.\., H, W, C\)"):
            call(torch.rand(2, 8, 8, 3), torch.rand(2, 8, 8, 3))


def test_torch_cutblur_pair_takes_a_scheduled_ratio() -> None:
    """A schedule's value, lent by the integrations, was ignored by RandomCutBlurPair (its own
    ratio applied; the Keras layer and every other transform read the lent value)."""
    from maskmix.schedules import lending

    lr, hr = torch.zeros(8, 3, 16, 16), torch.ones(8, 3, 16, 16)
    transform = RandomCutBlurPair()
    with lending({id(transform): {"augmentation_ratio": 0.0}}):
        out, _ = transform((lr, hr))
    assert torch.equal(out, lr)
    with lending({id(transform): {"augmentation_ratio": 0.5}}):
        out, _ = transform((lr, hr))
    assert int((out != lr).flatten(1).any(dim=1).sum()) == 4


def test_torch_cutblur_pair_transform_runs_the_function() -> None:
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


@pytest.mark.parametrize("form", [_pair_function, _pair_transform], ids=["function", "transform"])
def test_torch_cutblur_pair_one_pair_is_augmented_with_probability_ratio(form) -> None:
    """One (C, H, W) pair, or one clip of a Video, in a per-sample pipeline: ratio 0.3 augments
    about 30% of the calls (an exact count of one pair would round 0.3 to never and 0.7 to always)."""
    hr, lr = make_images((3, 12, 12), seed=1), make_images((3, 12, 12), seed=2)
    clip_hr = tv_tensors.Video(make_images((2, 3, 12, 12), seed=3))
    clip_lr = tv_tensors.Video(make_images((2, 3, 12, 12)))
    generator = torch.Generator().manual_seed(0)
    for ratio, expected in ((0.3, 60), (0.7, 140)):
        hits = sum(not torch.equal(form(lr, hr, augmentation_ratio=ratio, generator=generator)[0], lr)
                   for _ in range(200))
        assert abs(hits - expected) < 26, (ratio, hits)  # Binomial(200, 0.3): sd 6.5, four sd
        hits = sum(not torch.equal(form(clip_lr, clip_hr, augmentation_ratio=ratio, generator=generator)[0], clip_lr)
                   for _ in range(200))
        assert abs(hits - expected) < 26, (ratio, hits)


@pytest.mark.parametrize("typed", ["both", "hr", "lr"])
@pytest.mark.parametrize("form", [_pair_function, _pair_transform], ids=["function", "transform"])
def test_torch_cutblur_pair_frames_of_a_clip_share_the_box_direction_and_selection(form, typed: str) -> None:
    """Either tensor may carry the Video type: an LR input computed from the HR Video (pooled and
    up-sampled) is a plain tensor, and its pairs are still clips."""
    hr = make_images((6, 4, 3, 16, 16), seed=1)
    lr = make_images((6, 4, 3, 16, 16), seed=2)
    hr = tv_tensors.Video(hr) if typed in ("both", "hr") else hr
    lr = tv_tensors.Video(lr) if typed in ("both", "lr") else lr
    x, _ = form(lr, hr, augmentation_ratio=0.5, generator=torch.Generator().manual_seed(0))
    assert isinstance(x, tv_tensors.Video) == (typed != "hr")  # the input's type, as torchvision's
    from_hr = (x == hr).all(dim=2) & (x != lr).any(dim=2)  # (B, T, H, W): pixels taken from HR
    assert all(torch.equal(from_hr[:, 0], from_hr[:, t]) for t in range(4))
    changed = from_hr.flatten(1).any(1)
    assert int(changed.sum()) == 3  # the exact count of clips, not of frames


def test_torch_cutblur_pair_transform_checks_like_the_keras_layer() -> None:
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
def test_torch_cutblur_pair_compiles_fullgraph() -> None:
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


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size.
KERAS_SIZE = (11, 9)


def keras_images(b: int = 6, dtype: str = "float32", size=KERAS_SIZE, channels: int = 3, seed: int = 0):
    return kh.to_tensor(kh.make_images((b, *size, channels), dtype, seed=seed), dtype)


@pytest.mark.parametrize("blur_factor", [0.3, (0.15, 0.8)])
@pytest.mark.parametrize("method", METHODS)
def test_keras_cutblur_rectangle_is_the_down_up_resize_and_nothing_else_changes(method, blur_factor):
    x = keras_images(8, "float64", seed=1)
    layer = keras_RandomCutBlur(blur_factor=blur_factor, resize_method=method, patch_area=(0.2, 0.5), seed=3)
    out, p = kh.run_with_params(layer, x)
    xs = kh.np_(x)
    for b in range(8):
        low = references.resize(xs[b], (int(p["low_height"][b]), int(p["low_width"][b])), method)
        blurred = references.resize(low, KERAS_SIZE, method)
        rows, cols = kh.box_slices(p, b)
        np.testing.assert_allclose(out[b][rows, cols], blurred[rows, cols], atol=1e-6)  # TF resizes in float32
        keep = kh.outside(KERAS_SIZE, (rows, cols))
        np.testing.assert_array_equal(out[b][keep], xs[b][keep])
        assert (out[b][rows, cols] != xs[b][rows, cols]).any()
    # Low-resolution sizes: max(1, round(n f)) with halves up, per image.
    for key, n in (("low_height", KERAS_SIZE[0]), ("low_width", KERAS_SIZE[1])):
        expected = np.clip(np.floor(p["blur_factor"].astype(np.float64) * n + 0.5), 1, n)
        np.testing.assert_array_equal(p[key], expected)
    if isinstance(blur_factor, tuple):
        assert len(np.unique(p["low_height"])) > 1  # per-image factors
        assert (p["blur_factor"] >= 0.15).all() and (p["blur_factor"] <= 0.8).all()


@pytest.mark.parametrize("method", [*METHODS, "nearest_legacy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_keras_resampling_tables_hold_the_matrices_of_each_size(method, dtype, monkeypatch):
    """The host-built tables (read per image) equal the matrices computed on the backend for the
    same sizes, in both directions, and a layer gives the same images either way."""
    from maskmix.keras import _patches

    ops = keras.src.backend
    sizes = kh.to_tensor(np.array([3, 7, 5, 3, 6], "int32"), "int32")
    for shrink in (True, False):
        table = _patches.axis_resampling(ops, 13, sizes, (3, 7), shrink=shrink, method=method, dtype=dtype)
        ins, outs = (13, sizes) if shrink else (sizes, 13)
        computed = _patches.resample_matrix(ops, ins, outs, 13 if shrink else 7, 7 if shrink else 13, method, dtype)
        assert tuple(table.shape) == tuple(computed.shape) == ((5, 7, 13) if shrink else (5, 13, 7))
        np.testing.assert_allclose(kh.np_(table), kh.np_(computed), rtol=0, atol=1e-6 if dtype == "float32" else 1e-14)
        one = _patches.axis_resampling(ops, 13, None, (5, 5), shrink=shrink, method=method, dtype=dtype)
        fifth = kh.np_(table)[2][:5] if shrink else kh.np_(table)[2][:, :5]  # image 2 has size 5
        np.testing.assert_allclose(kh.np_(one), fifth, rtol=0, atol=1e-6 if dtype == "float32" else 1e-14)
    if method not in METHODS:  # Cut-Thumbnail's legacy nearest: not a CutBlur method
        return
    x = keras_images(6, dtype, seed=5)
    tabled = keras_RandomCutBlur(blur_factor=(0.15, 0.8), resize_method=method, seed=3)(x)
    monkeypatch.setattr(_patches, "RESAMPLING_TABLE_BYTES", 0)
    np.testing.assert_allclose(kh.np_(keras_RandomCutBlur(blur_factor=(0.15, 0.8), resize_method=method, seed=3)(x)),
                               kh.np_(tabled), rtol=0, atol=1e-5 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("dtype", ["uint8", "float16", "bfloat16", "float32"])
def test_keras_cutblur_dtypes_follow_the_float_reference(dtype):
    x = keras_images(4, dtype, seed=2)
    layer = keras_RandomCutBlur(blur_factor=(0.2, 0.5), seed=4)
    out, p = kh.run_with_params(layer, x)
    xs = kh.np_(x).astype(np.float64)
    tol = {"uint8": 0.5 + 1e-3, "float16": 2e-3, "bfloat16": 1.6e-2, "float32": 1e-5}[dtype]
    for b in range(4):
        low = references.resize(xs[b], (int(p["low_height"][b]), int(p["low_width"][b])), "bilinear")
        blurred = references.resize(low, KERAS_SIZE, "bilinear")
        rows, cols = kh.box_slices(p, b)
        np.testing.assert_allclose(out[b][rows, cols], blurred[rows, cols], atol=tol * (1 + (dtype != "uint8")))
    if dtype == "uint8":
        assert out.dtype == np.uint8


@pytest.mark.parametrize("channels_first", [False, True])
@pytest.mark.parametrize("direction", ["hr_to_lr", "lr_to_hr", "random"])
def test_keras_cutblur_pair_direction_semantics(direction, channels_first):
    hr, lr = kh.make_images((16, *KERAS_SIZE, 3), seed=1), kh.make_images((16, *KERAS_SIZE, 3), seed=2)
    layout = (0, 3, 1, 2) if channels_first else (0, 1, 2, 3)
    layer = keras_RandomCutBlurPair(direction=direction, augmentation_ratio=0.75, seed=3,
                         data_format="channels_first" if channels_first else None)
    t = kh.params_np(layer.get_random_transformation(lr.transpose(layout)))
    layer = keras_RandomCutBlurPair(direction=direction, augmentation_ratio=0.75, seed=3,
                         data_format="channels_first" if channels_first else None)
    out, target = layer((lr.transpose(layout), hr.transpose(layout)))
    out = kh.np_(out).transpose(0, 2, 3, 1) if channels_first else kh.np_(out)
    np.testing.assert_array_equal(kh.np_(target), hr.transpose(layout))
    assert t["selected"].sum() == 12
    for b in range(16):
        inside = ~kh.outside(KERAS_SIZE, kh.box_slices(t, b))
        if not t["selected"][b]:
            np.testing.assert_array_equal(out[b], lr[b])
        elif t["lr_to_hr"][b]:
            np.testing.assert_array_equal(out[b][inside], lr[b][inside])
            np.testing.assert_array_equal(out[b][~inside], hr[b][~inside])
        else:
            np.testing.assert_array_equal(out[b][inside], hr[b][inside])
            np.testing.assert_array_equal(out[b][~inside], lr[b][~inside])
    if direction == "random":
        assert 0 < t["lr_to_hr"][t["selected"]].mean() < 1
    else:
        assert (t["lr_to_hr"] == (direction == "lr_to_hr")).all()


def test_keras_cutblur_pair_function_and_validation():
    hr, lr = kh.make_images((3, *KERAS_SIZE, 3), "uint8", seed=1), kh.make_images((3, *KERAS_SIZE, 3), "uint8", seed=2)
    out, target = keras_cutblur_pair(lr, hr, seed=0)
    assert target is hr and out.dtype == tf.uint8 and tuple(out.shape) == hr.shape
    np.testing.assert_array_equal(kh.np_(keras_cutblur_pair(lr, hr, seed=0)[0]), kh.np_(out))
    single, _ = keras_cutblur_pair(lr[0], hr[0], direction="hr_to_lr", seed=0)
    assert tuple(single.shape) == hr.shape[1:]
    with pytest.raises(ValueError, match="cutblur_pair: direction must be one of"):
        keras_cutblur_pair(lr, hr, direction="both")
    with pytest.raises(ValueError, match=r"cutblur_pair: patch_area must be"):
        keras_cutblur_pair(lr, hr, patch_area=1.5)
    with pytest.raises(ValueError, match="cutblur_pair: lr_upsampled and hr must have the same shape"):
        keras_cutblur_pair(lr[:, :5], hr)
    with pytest.raises(TypeError, match="cutblur_pair: lr_upsampled and hr must have the same dtype"):
        keras_cutblur_pair(lr.astype("float32"), hr)
    with pytest.raises(TypeError, match="cutblur_pair: seed must be an int or None"):
        keras_cutblur_pair(lr, hr, seed=1.5)
    layer = keras_RandomCutBlurPair(direction="lr_to_hr", seed=1)
    ds = tf.data.Dataset.from_tensor_slices((lr, hr)).batch(2).map(lambda a, b: layer((a, b)))
    assert [tuple(a.shape) for a, _ in ds] == [(2, *KERAS_SIZE, 3), (1, *KERAS_SIZE, 3)]
    clean, _ = layer((lr, hr), training=False)
    np.testing.assert_array_equal(kh.np_(clean), lr)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    assert keras.saving.deserialize_keras_object(config).get_config() == layer.get_config()


def test_keras_cutblur_pair_one_pair_is_augmented_with_probability_ratio():
    """One (H, W, C) pair: ratio 0.3 augments about 30% of the calls, as torch's (an exact count
    of one pair would round 0.3 to never)."""
    hr, lr = kh.make_images((8, 8, 3), "float32", seed=1), kh.make_images((8, 8, 3), "float32", seed=2)
    layer = kh.in_graph(keras_RandomCutBlurPair(augmentation_ratio=0.3, seed=0))
    hits = sum(not np.array_equal(kh.np_(layer((lr, hr))[0]), lr) for _ in range(120))
    assert abs(hits - 36) < 18, hits  # Binomial(120, 0.3): sd 5.0, 3.6 sd
    hits = sum(not np.array_equal(kh.np_(keras_cutblur_pair(lr, hr, augmentation_ratio=0.3, seed=s)[0]), lr)
               for s in range(120))
    assert abs(hits - 36) < 18, hits


def test_keras_cutblur_pair_layer_checks_its_pair_like_the_function():
    """The layer refuses what keras_cutblur_pair refuses (it returned float32 for a uint8 LR input)."""
    lr, hr = keras_images(2), keras_images(2, seed=1)
    layer = keras_RandomCutBlurPair(seed=0)
    cases = [
        ((keras.ops.cast(lr, "uint8"), hr), TypeError,
         "lr_upsampled and hr must have the same dtype; got uint8 and float32"),
        ((lr[0], hr), ValueError, "lr_upsampled and hr must have the same shape"),
        ((lr[:1], hr), ValueError, "lr_upsampled and hr must have the same shape"),
        ({"lr": lr}, TypeError, "expected a pair (lr_upsampled, hr); got dict"),
        ((lr, hr, hr), TypeError, "expected a pair (lr_upsampled, hr); got tuple"),
    ]
    for data, error, message in cases:
        with pytest.raises(error, match="RandomCutBlurPair: " + re.escape(message)):
            layer(data)
    out, target = layer((lr, hr))
    assert tuple(out.shape) == tuple(lr.shape) and target is hr
