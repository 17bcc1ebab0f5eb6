"""RandomCutThumbnail: the pasted box is a resize of the whole (own or partner's) image, nothing
else changes, box sizes follow the area, labels weigh the thumbnail's pixels, calling conventions.

The reference thumbnail is ``torch.nn.functional.interpolate`` of the source image to the drawn
``(th, tw)``, one image at a time, with the mode the docstring documents for each
``resize_method`` (an independent implementation: ATen's resize kernels, not the library's
resampling matrices). Both sides compute the same filter weights, so they differ only by the
floating-point summation order: in float64 that is below 1e-12.
"""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from helpers import (
    ALL_DTYPES,
    changed_pixels,
    make_images,
    reference_box_mask,
    run_mixing,
    run_with_params,
)
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from maskmix.torch.cut_thumbnail import RandomCutThumbnail

METHODS = ("bilinear", "bicubic", "area", "nearest")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def reference_thumbnail(image: Tensor, th: int, tw: int, method: str) -> Tensor:
    """``(C, th, tw)`` resize of one ``(C, H, W)`` float image, as documented per method."""
    if method == "nearest":
        return F.interpolate(image[None], size=(th, tw), mode="nearest-exact")[0]
    if method == "area":
        return F.interpolate(image[None], size=(th, tw), mode="area")[0]
    return F.interpolate(image[None], size=(th, tw), mode=method, align_corners=False, antialias=True)[0]


run = run_mixing


def box_of(p: dict, size: tuple[int, int]) -> Tensor:
    return reference_box_mask(p["top"], p["left"], p["height"], p["width"], size)


def check_boxes(p: dict, size: tuple[int, int]) -> None:
    """Boxes fully inside, sizes ``round(H sqrt(a))`` x ``round(W sqrt(a))`` (>= 1, <= image)."""
    H, W = size
    a = p["area"].double()
    for side, n in ((p["height"], H), (p["width"], W)):
        exact = n * torch.sqrt(a)
        # round() of a float32 product: at most half a pixel (plus float32 slack) from the exact side.
        assert torch.all((side.double() - exact).abs() <= 0.5 + 1e-4) or n == 1
        assert torch.all((side >= 1) & (side <= n))
    assert torch.all(p["top"] >= 0) and torch.all(p["top"] + p["height"] <= H)
    assert torch.all(p["left"] >= 0) and torch.all(p["left"] + p["width"] <= W)


# --------------------------------------------------------------------------------------------
# Pixels.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [(24, 40), (37, 11)])
@pytest.mark.parametrize("mix", [False, True])
def test_box_is_a_resize_of_the_whole_image_and_nothing_else_changes(method, size, mix) -> None:
    B, K = 7, 4
    x = make_images((B, 3, *size), torch.float64, seed=3)
    t = RandomCutThumbnail(thumbnail_area=(0.05, 0.5), resize_method=method, mix_images=mix, num_classes=K,
                           generator=gen(5))
    if mix:
        out, _, p = run(t, x, torch.arange(B) % K)
        source = x[p["partner"]]
        assert not torch.any(p["partner"] == torch.arange(B))
    else:
        out, p = run_with_params(t, x)
        source = x
        assert "partner" not in p
    check_boxes(p, size)
    box = box_of(p, size)
    # Outside the box: bit-identical.
    assert torch.equal(out.masked_fill(box[:, None], 0), x.masked_fill(box[:, None], 0))
    for b in range(B):
        th, tw, top, left = (int(p[k][b]) for k in ("height", "width", "top", "left"))
        expected = reference_thumbnail(source[b], th, tw, method)
        torch.testing.assert_close(out[b, :, top : top + th, left : left + tw], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_many_images_few_sizes_and_channels_last_inputs(method) -> None:
    # More images than possible sizes: the matrices are built once per size and picked per image
    # (the other code path of the same resampling). The input is channels-last (non-contiguous).
    B, H, W = 40, 20, 24
    x = make_images((B, 3, H, W), torch.float64, seed=8).contiguous(memory_format=torch.channels_last)
    t = RandomCutThumbnail(thumbnail_area=(0.1, 0.3), resize_method=method, generator=gen(6))
    out, p = run_with_params(t, x)
    assert p["height"].unique().numel() > 1 and out.shape == x.shape
    box = box_of(p, (H, W))
    assert torch.equal(out.masked_fill(box[:, None], 0), x.masked_fill(box[:, None], 0))
    for b in range(B):
        th, tw, top, left = (int(p[k][b]) for k in ("height", "width", "top", "left"))
        expected = reference_thumbnail(x[b], th, tw, method)
        torch.testing.assert_close(out[b, :, top : top + th, left : left + tw], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_fixed_area_gives_one_size_and_matches_a_batched_interpolate(method) -> None:
    # The single-size case has the same semantics as one F.interpolate call on the whole batch.
    H, W = 30, 20
    x = make_images((6, 2, H, W), torch.float64, seed=1)
    t = RandomCutThumbnail(thumbnail_area=0.25, resize_method=method, generator=gen(0))
    out, p = run_with_params(t, x)
    assert torch.all(p["height"] == 15) and torch.all(p["width"] == 10)
    mode = {"nearest": "nearest-exact"}.get(method, method)
    extra = dict(antialias=True, align_corners=False) if method in ("bilinear", "bicubic") else {}
    expected = F.interpolate(x, size=(15, 10), mode=mode, **extra)
    for b in range(6):
        top, left = int(p["top"][b]), int(p["left"][b])
        torch.testing.assert_close(out[b, :, top : top + 15, left : left + 10], expected[b], rtol=0, atol=1e-12)


def test_nearest_and_area_copy_or_average_source_pixels_exactly() -> None:
    # Halving: nearest-exact picks the odd pixels (floor((i + 0.5) * 2) = 2i + 1); area averages 2x2 blocks.
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    for method, expected in (("nearest", x[:, :, 1::2, 1::2]), ("area", F.avg_pool2d(x, 2))):
        out, p = run_with_params(RandomCutThumbnail(thumbnail_area=0.25, resize_method=method, generator=gen(2)), x)
        for b in range(2):
            top, left = int(p["top"][b]), int(p["left"][b])
            assert torch.equal(out[b, :, top : top + 4, left : left + 4], expected[b])


def test_constant_images_stay_constant_and_antialiasing_averages_a_checkerboard() -> None:
    # Weights sum to 1 (constant stays constant); a 1-px checkerboard shrunk 4x averages to ~0.5
    # with the antialiased filters, whereas point sampling (no antialias) would keep 0s and 1s.
    constant = torch.full((3, 3, 32, 32), 0.3, dtype=torch.float64)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    board = ((yy + xx) % 2).double().expand(3, 1, 32, 32)
    for method in METHODS:
        t = RandomCutThumbnail(thumbnail_area=1 / 16, resize_method=method, generator=gen(1))
        torch.testing.assert_close(t(constant), constant, rtol=0, atol=1e-12)
        if method in ("bilinear", "area"):
            out, p = run_with_params(t, board)
            box = box_of(p, (32, 32))
            torch.testing.assert_close(out[:, 0][box], torch.full((3 * 64,), 0.5, dtype=torch.float64),
                                       rtol=0, atol=0.05)


def test_sizes_vary_per_image_with_a_range_and_follow_the_distribution() -> None:
    H, W = 60, 90
    x = torch.zeros(1, 1, 1, 1).expand(3000, 1, H, W)
    p = RandomCutThumbnail(thumbnail_area=(0.05, 0.3), generator=gen(0)).make_params([x])
    check_boxes(p, (H, W))
    assert scipy.stats.kstest(((p["area"].double() - 0.05) / 0.25).numpy(), "uniform").pvalue > 1e-4
    assert p["height"].unique().numel() > 10
    # Top-left corners are uniform over the fitting positions: normalised position ~ U(0, 1).
    for start, side, n in ((p["top"], p["height"], H), (p["left"], p["width"], W)):
        u = (start.double() + 0.5) / (n - side + 1).double()
        assert scipy.stats.kstest(u.numpy(), "uniform").statistic < 0.05
        assert torch.any(start == 0) and torch.any(start + side == n)
    fixed = RandomCutThumbnail(thumbnail_area=0.1, generator=gen(0)).make_params([x])
    assert fixed["height"].unique().tolist() == [round(H * math.sqrt(0.1))]
    assert fixed["width"].unique().tolist() == [round(W * math.sqrt(0.1))]


# --------------------------------------------------------------------------------------------
# Labels (mix_images=True).
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label_kind", ["index", "onehot"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_mixed_labels_weigh_the_thumbnail_pixel_area(label_kind, smoothing) -> None:
    B, K, H, W = 9, 5, 23, 31
    x = make_images((B, 3, H, W), seed=4)
    idx = torch.randint(0, K, (B,), generator=gen(1))
    labels = idx if label_kind == "index" else F.one_hot(idx, K).float()
    t = RandomCutThumbnail(thumbnail_area=(0.05, 0.6), mix_images=True, num_classes=K, label_smoothing=smoothing,
                           generator=gen(7))
    out, soft, p = run(t, x, labels)
    y = F.one_hot(idx, K).double() * (1 - smoothing) + smoothing / K
    for b in range(B):
        f = int(p["height"][b]) * int(p["width"][b]) / (H * W)
        expected = (1 - f) * y[b] + f * y[int(p["partner"][b])]
        torch.testing.assert_close(soft[b].double(), expected, rtol=0, atol=1e-6)
    assert soft.dtype == torch.float32 and soft.shape == (B, K)
    assert changed_pixels(x, out).sum() > 0
    torch.testing.assert_close(soft.sum(1), torch.ones(B), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# dtypes, layouts, conventions.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("mix", [False, True])
def test_dtypes(dtype, mix) -> None:
    H, W = 18, 26
    x = make_images((5, 3, H, W), dtype, seed=6)
    t = RandomCutThumbnail(thumbnail_area=(0.1, 0.4), mix_images=mix, num_classes=3, generator=gen(1))
    if mix:
        out, _, p = run(t, x, torch.arange(5) % 3)
    else:
        out, p = run_with_params(t, x)
    assert out.dtype == dtype and out.shape == x.shape
    source = x[p["partner"]] if mix else x
    box = box_of(p, (H, W))
    assert torch.equal(out.masked_fill(box[:, None], 0), x.masked_fill(box[:, None], 0))
    for b in range(5):
        th, tw, top, left = (int(p[k][b]) for k in ("height", "width", "top", "left"))
        expected = reference_thumbnail(source[b].double(), th, tw, "bilinear")
        got = out[b, :, top : top + th, left : left + tw].double()
        if dtype == torch.uint8:
            # Computed in float32 then rounded: at most one level from the rounded float64 reference.
            assert (got - expected.round()).abs().max() <= 1
        else:
            # float32 compute, one rounding to the output dtype.
            eps = torch.finfo(dtype).eps
            torch.testing.assert_close(got, expected, rtol=eps, atol=max(eps, 1e-6))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_any_channel_count(channels) -> None:
    x = make_images((4, channels, 12, 15), seed=channels)
    out, p = run_with_params(RandomCutThumbnail(thumbnail_area=0.3, generator=gen(0)), x)
    box = box_of(p, (12, 15))
    for b in range(4):
        th, tw, top, left = (int(p[k][b]) for k in ("height", "width", "top", "left"))
        torch.testing.assert_close(out[b, :, top : top + th, left : left + tw],
                                   reference_thumbnail(x[b], th, tw, "bilinear"), rtol=1e-5, atol=1e-6)
    assert torch.equal(out.masked_fill(box[:, None], 0), x.masked_fill(box[:, None], 0))


def test_single_images_leading_dims_tv_tensors_and_samples_with_labels() -> None:
    t = RandomCutThumbnail(thumbnail_area=0.25, generator=gen(0))
    image = make_images((3, 16, 12))
    out = t(image)
    assert out.shape == image.shape and changed_pixels(image[None], out[None]).sum() == 8 * 6
    many = make_images((2, 3, 1, 16, 12))
    out = t(many)
    assert out.shape == many.shape
    assert torch.equal(changed_pixels(many.flatten(0, 1), out.flatten(0, 1)).sum((1, 2)) > 0, torch.ones(6) > 0)
    wrapped = tv_tensors.Image(make_images((2, 3, 16, 12)))
    out = v2.Compose([v2.RandomHorizontalFlip(p=0.0), t])(wrapped)
    assert type(out) is tv_tensors.Image and out.shape == wrapped.shape
    # A torchvision sample: labels and other entries pass through untouched.
    labels = torch.tensor([3, 1])
    out, same = t(make_images((2, 3, 16, 12)), labels)
    assert same is labels
    sample = {"image": tv_tensors.Image(make_images((3, 16, 12))), "label": 4, "box": torch.tensor([1.0])}
    result = t(sample)
    assert result["label"] == 4 and result["box"] is sample["box"] and type(result["image"]) is tv_tensors.Image
    assert not torch.equal(result["image"], sample["image"])


def test_mixing_conventions_single_image_and_tiny_batches() -> None:
    t = RandomCutThumbnail(mix_images=True, num_classes=3)
    with pytest.raises(ValueError, match=r"RandomCutThumbnail: images must be a batch \(\.\.\., B, C, H, W\)"):
        t(make_images((3, 8, 8)), torch.tensor([0]))
    with pytest.raises(TypeError, match=r"RandomCutThumbnail: expected \(images, labels\)"):
        t(make_images((2, 3, 8, 8)))
    for batch in (0, 1):
        x = make_images((batch, 3, 8, 8))
        out, soft = t(x, torch.zeros(batch, dtype=torch.int64))
        assert torch.equal(out, x) and soft.shape == (batch, 3)
    x = make_images((4, 3, 8, 8))
    out, soft, extra = t((x, torch.tensor([0, 1, 2, 0]), "kept"))
    assert extra == "kept" and soft.shape == (4, 3)
    result = t({"images": x, "labels": torch.tensor([0, 1, 2, 0])})
    assert result["labels"].shape == (4, 3)


@pytest.mark.parametrize("mix", [False, True])
@pytest.mark.parametrize("size", [(0, 3, 8, 8), (3, 3, 1, 1), (3, 1, 1, 9), (3, 2, 9, 1), (2, 3, 2, 2)])
def test_empty_batches_and_tiny_images(mix, size) -> None:
    x = make_images(size, torch.uint8)
    for method in METHODS:
        t = RandomCutThumbnail(thumbnail_area=(0.05, 0.9), resize_method=method, mix_images=mix, num_classes=2)
        out = t(x, torch.zeros(size[0], dtype=torch.int64))[0] if mix else t(x)
        assert out.shape == x.shape and out.dtype == x.dtype
        if not mix:  # a 1-pixel thumbnail of a 1-pixel side is that side's own resample
            assert size[2] * size[3] != 1 or torch.equal(out, x)


@pytest.mark.compile
@pytest.mark.parametrize(
    "case",
    [(torch.uint8, dict(thumbnail_area=0.25, resize_method="bicubic", mix_images=True, num_classes=3))],
    ids=["mixed_fixed_bicubic"],
)
def test_torch_compile_fullgraph_matches_eager(case) -> None:
    # Bicubic resampling of a fixed-size mixed thumbnail through Inductor (the convention battery
    # compiles every registry variant; this adds the bicubic tables).
    dtype, kwargs = case
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    t = RandomCutThumbnail(**kwargs)
    compiled = torch.compile(t, fullgraph=True)
    mix = kwargs.get("mix_images", False)
    y = torch.arange(6) % 3
    with inductor_config.patch(fallback_random=True):
        x = make_images((6, 3, 16, 20), dtype)
        args = (x, y) if mix else (x,)
        torch.manual_seed(0)
        eager = t(*args)
        torch.manual_seed(0)
        out = compiled(*args)
    eager, out = (eager, out) if mix else ((eager,), (out,))
    # Same boxes; the resampling matmuls may sum in another order: equal up to float rounding
    # (uint8: at most one level where a value sits on a rounding boundary).
    box = changed_pixels(x, out[0])
    assert box.any() and torch.equal(box, changed_pixels(x, eager[0]))
    tol = 1.0 if dtype == torch.uint8 else 1e-5
    torch.testing.assert_close(out[0].double(), eager[0].double(), rtol=0, atol=tol)
    if mix:
        torch.testing.assert_close(out[1], eager[1], rtol=0, atol=1e-6)


def test_float_values_outside_the_range_are_neither_clipped_nor_rounded() -> None:
    x = make_images((3, 3, 12, 12), torch.float64) * 20 - 10
    out, p = run_with_params(RandomCutThumbnail(thumbnail_area=0.2, resize_method="bicubic", generator=gen(0)), x)
    box = box_of(p, (12, 12))
    assert torch.equal(out.masked_fill(box[:, None], 0), x.masked_fill(box[:, None], 0))
    for b in range(3):
        th, tw, top, left = (int(p[k][b]) for k in ("height", "width", "top", "left"))
        region = out[b, :, top : top + th, left : left + tw]
        torch.testing.assert_close(region, reference_thumbnail(x[b], th, tw, "bicubic"), rtol=0, atol=1e-12)
        assert region.min() < -1 and region.max() > 2
