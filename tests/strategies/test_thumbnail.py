"""Cut-Thumbnail (``RandomCutThumbnail``), torch and Keras: the pasted box is a resize of the whole
(own or partner's) image and nothing else changes, box sizes follow the area, labels weigh the
thumbnail's pixels, calling conventions.

The reference thumbnail is ``references.resize`` of the source image to the drawn ``(th, tw)``, one
image at a time, with the filter each ``resize_method`` documents (1-D weight matrices built one
output pixel at a time, not the library's resampling matrices); in float64 the two differ only by
the summation order, below 1e-12. One torch test also compares a fixed size with one batched
``F.interpolate`` call.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import math

import numpy as np
import pytest
import references
import scipy.stats
import tensorflow as tf
import torch
import torch.nn.functional as F
from helpers import (
    ALL_DTYPES,
    changed_pixels,
    gen,
    make_images,
    reference_box_mask,
    reference_resize,
    run_mixing,
    run_with_params,
)
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from maskmix.keras import RandomCutThumbnail as keras_RandomCutThumbnail
from maskmix.torch.cut_thumbnail import RandomCutThumbnail

METHODS = ("bilinear", "bicubic", "area", "nearest")
K = 4  # classes of the Keras tests


def reference_thumbnail(image: Tensor, th: int, tw: int, method: str) -> Tensor:
    """``(C, th, tw)`` resize of one ``(C, H, W)`` float image (``references.resize``), in its dtype."""
    return reference_resize(image, (th, tw), method).to(image.dtype)


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
# torch: pixels.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [(24, 40), (37, 11)])
@pytest.mark.parametrize("mix", [False, True])
def test_torch_box_is_a_resize_of_the_whole_image_and_nothing_else_changes(method, size, mix) -> None:
    B, K = 7, 4
    x = make_images((B, 3, *size), torch.float64, seed=3)
    t = RandomCutThumbnail(thumbnail_area=(0.05, 0.5), resize_method=method, mix_images=mix, num_classes=K,
                           generator=gen(5))
    if mix:
        out, _, p = run_mixing(t, x, torch.arange(B) % K)
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
def test_torch_many_images_few_sizes_and_channels_last_inputs(method) -> None:
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
def test_torch_fixed_area_gives_one_size_and_matches_a_batched_interpolate(method) -> None:
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


def test_torch_nearest_and_area_copy_or_average_source_pixels_exactly() -> None:
    # Halving: nearest-exact picks the odd pixels (floor((i + 0.5) * 2) = 2i + 1); area averages 2x2 blocks.
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    for method, expected in (("nearest", x[:, :, 1::2, 1::2]), ("area", F.avg_pool2d(x, 2))):
        out, p = run_with_params(RandomCutThumbnail(thumbnail_area=0.25, resize_method=method, generator=gen(2)), x)
        for b in range(2):
            top, left = int(p["top"][b]), int(p["left"][b])
            assert torch.equal(out[b, :, top : top + 4, left : left + 4], expected[b])


def test_torch_constant_images_stay_constant_and_antialiasing_averages_a_checkerboard() -> None:
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


def test_torch_sizes_vary_per_image_with_a_range_and_follow_the_distribution() -> None:
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
# torch: labels (mix_images=True).
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label_kind", ["index", "onehot"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_torch_mixed_labels_weigh_the_thumbnail_pixel_area(label_kind, smoothing) -> None:
    B, K, H, W = 9, 5, 23, 31
    x = make_images((B, 3, H, W), seed=4)
    idx = torch.randint(0, K, (B,), generator=gen(1))
    labels = idx if label_kind == "index" else F.one_hot(idx, K).float()
    t = RandomCutThumbnail(thumbnail_area=(0.05, 0.6), mix_images=True, num_classes=K, label_smoothing=smoothing,
                           generator=gen(7))
    out, soft, p = run_mixing(t, x, labels)
    y = F.one_hot(idx, K).double() * (1 - smoothing) + smoothing / K
    for b in range(B):
        f = int(p["height"][b]) * int(p["width"][b]) / (H * W)
        expected = (1 - f) * y[b] + f * y[int(p["partner"][b])]
        torch.testing.assert_close(soft[b].double(), expected, rtol=0, atol=1e-6)
    assert soft.dtype == torch.float32 and soft.shape == (B, K)
    assert changed_pixels(x, out).sum() > 0
    torch.testing.assert_close(soft.sum(1), torch.ones(B), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# torch: dtypes, layouts, conventions.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("mix", [False, True])
def test_torch_dtypes(dtype, mix) -> None:
    H, W = 18, 26
    x = make_images((5, 3, H, W), dtype, seed=6)
    t = RandomCutThumbnail(thumbnail_area=(0.1, 0.4), mix_images=mix, **({"num_classes": 3} if mix else {}),
                           generator=gen(1))
    if mix:
        out, _, p = run_mixing(t, x, torch.arange(5) % 3)
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
def test_torch_any_channel_count(channels) -> None:
    x = make_images((4, channels, 12, 15), seed=channels)
    out, p = run_with_params(RandomCutThumbnail(thumbnail_area=0.3, generator=gen(0)), x)
    box = box_of(p, (12, 15))
    for b in range(4):
        th, tw, top, left = (int(p[k][b]) for k in ("height", "width", "top", "left"))
        torch.testing.assert_close(out[b, :, top : top + th, left : left + tw],
                                   reference_thumbnail(x[b], th, tw, "bilinear"), rtol=1e-5, atol=1e-6)
    assert torch.equal(out.masked_fill(box[:, None], 0), x.masked_fill(box[:, None], 0))


def test_torch_single_images_leading_dims_tv_tensors_and_samples_with_labels() -> None:
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
    sample = {"image": tv_tensors.Image(make_images((3, 16, 12))), "label": 4, "weight": torch.tensor([1.0])}
    result = t(sample)
    assert result["label"] == 4 and result["weight"] is sample["weight"] and type(result["image"]) is tv_tensors.Image
    assert not torch.equal(result["image"], sample["image"])


def test_torch_mixing_conventions_single_image_and_tiny_batches() -> None:
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
def test_torch_empty_batches_and_tiny_images(mix, size) -> None:
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


def test_torch_float_values_outside_the_range_are_neither_clipped_nor_rounded() -> None:
    x = make_images((3, 3, 12, 12), torch.float64) * 20 - 10
    out, p = run_with_params(RandomCutThumbnail(thumbnail_area=0.2, resize_method="bicubic", generator=gen(0)), x)
    box = box_of(p, (12, 12))
    assert torch.equal(out.masked_fill(box[:, None], 0), x.masked_fill(box[:, None], 0))
    for b in range(3):
        th, tw, top, left = (int(p[k][b]) for k in ("height", "width", "top", "left"))
        region = out[b, :, top : top + th, left : left + tw]
        torch.testing.assert_close(region, reference_thumbnail(x[b], th, tw, "bicubic"), rtol=0, atol=1e-12)
        assert region.min() < -1 and region.max() > 2


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size.
KERAS_SIZE = (11, 9)


def keras_images(b: int = 6, dtype: str = "float32", size=KERAS_SIZE, channels: int = 3, seed: int = 0):
    return kh.to_tensor(kh.make_images((b, *size, channels), dtype, seed=seed), dtype)


@pytest.mark.parametrize("mix", [False, True])
@pytest.mark.parametrize("method", METHODS)
def test_keras_thumbnail_box_is_a_resize_of_the_whole_image(method, mix):
    b, size = 7, (12, 10)
    x = keras_images(b, "float64", size=size, seed=3)
    y = np.arange(b) % K
    layer = keras_RandomCutThumbnail(thumbnail_area=(0.1, 0.5), resize_method=method, mix_images=mix, num_classes=K,
                               seed=5)
    t = layer.get_random_transformation(x)
    out, p = kh.np_(layer.transform_images(x, t)), kh.params_np(t)
    xs = kh.np_(x)
    source = p["partner"] if mix else np.arange(b)
    if mix:
        assert (p["partner"] != np.arange(b)).all()
    for i in range(b):
        th, tw = int(p["height"][i]), int(p["width"][i])
        assert th == max(1, min(size[0], round(size[0] * np.sqrt(np.float32(p["area"][i])))))
        rows, cols = kh.box_slices(p, i)
        np.testing.assert_allclose(out[i][rows, cols], references.resize(xs[source[i]], (th, tw), method), atol=1e-6)
        keep = kh.outside(size, (rows, cols))
        np.testing.assert_array_equal(out[i][keep], xs[i][keep])
    assert (p["top"] + p["height"] <= size[0]).all() and (p["left"] + p["width"] <= size[1]).all()
    assert len(np.unique(p["height"])) > 1
    if mix:
        soft = kh.np_(layer.transform_labels(y, t, batch_size=b))
        f = p["height"] * p["width"] / (size[0] * size[1])
        np.testing.assert_array_equal(p["partner_weight"], f.astype(np.float32))
        eye = np.eye(K)[y]
        np.testing.assert_allclose(soft, (1 - f)[:, None] * eye + f[:, None] * eye[p["partner"]], rtol=1e-6)


def test_keras_thumbnail_mixed_calling_convention_and_fixed_area():
    x = keras_images(5, size=(8, 8))
    layer = keras_RandomCutThumbnail(thumbnail_area=0.25, mix_images=True, num_classes=5, seed=1)
    _, soft = layer((x, np.arange(5)))
    assert tuple(soft.shape) == (5, 5) and soft.dtype == tf.float32
    # 0.25 of 8 x 8 is 4 x 4: the label weight is exactly 16 / 64.
    np.testing.assert_allclose(np.sort(kh.np_(soft), axis=1)[:, -2:], [[0.25, 0.75]] * 5, rtol=1e-6)
    d = layer({"images": x, "labels": np.arange(5)})
    assert set(d) == {"images", "labels"}
    # Images alone are mixed and come back alone (Keras' CutMix/MixUp convention).
    assert tuple(layer(x).shape) == tuple(x.shape)
    with pytest.raises(ValueError, match="RandomCutThumbnail: images must be a batch"):
        layer((x[0], np.arange(1)))
    # One image, or none: passes through, labels made soft.
    for n in (0, 1):
        o, s = layer((x[:n], np.arange(n)))
        np.testing.assert_array_equal(kh.np_(o), kh.np_(x[:n]))
        assert tuple(s.shape) == (n, 5)
    # The plain layer takes images only, a single image too.
    plain = keras_RandomCutThumbnail(seed=0)
    assert tuple(plain(x[0]).shape) == (8, 8, 3)
