"""Keras RandomCutBlur, RandomCutThumbnail, RandomCutPaste and RandomCutSwap.

Pixel semantics against independent references (``tf.image.resize`` with ``antialias=True`` for
the nearest/bilinear/bicubic resizes, a NumPy adaptive average pooling for ``area``, slicing for
the pixel moves, a NumPy colour jitter), the same semantics on the torch backend, and agreement
with the torch transforms (sampled sizes: two-sample KS tests; the same parameters give the same
pixels); torch is imported only by the tests that need it. The conventions every layer keeps
(pass-through, fraction control, layouts, dtypes, seeds, serialisation, XLA, tf.data, backends)
are the battery of ``tests/contracts/test_keras_conventions.py``.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from keras_helpers import make_images, np_, params_np, to_tensor

from maskmix.keras import (
    RandomCutBlur,
    RandomCutBlurPair,
    RandomCutPaste,
    RandomCutSwap,
    RandomCutThumbnail,
    cutblur_pair,
)

REPO = str(Path(__file__).resolve().parents[1])
METHODS = ("nearest", "bilinear", "bicubic", "area")
SIZE = (11, 9)
K = 4

def images(b: int = 6, dtype: str = "float32", size=SIZE, channels: int = 3, seed: int = 0):
    return to_tensor(make_images((b, *size, channels), dtype, seed=seed), dtype)


def run(layer, x):
    """``get_random_transformation`` then ``transform_images``: output and parameters as NumPy."""
    t = layer.get_random_transformation(x)
    return np_(layer.transform_images(x, t)), params_np(t)


def area_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Adaptive average pooling of an ``(H, W, C)`` image (``F.interpolate(mode="area")``), by loops."""
    height, width = image.shape[:2]
    out = np.zeros((*size, image.shape[2]), np.float64)
    for i in range(size[0]):
        y0, y1 = (i * height) // size[0], -((-(i + 1) * height) // size[0])
        for j in range(size[1]):
            x0, x1 = (j * width) // size[1], -((-(j + 1) * width) // size[1])
            out[i, j] = image[y0:y1, x0:x1].astype(np.float64).mean(axis=(0, 1))
    return out


def resize(image: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """The reference resize of one ``(H, W, C)`` float image, as the layers document it."""
    if method == "area":
        return area_resize(image, size)
    return tf.image.resize(image.astype(np.float64), size, method=method, antialias=True).numpy()


def box(p: dict, b: int, prefix: str = "", suffix: str = "") -> tuple[slice, slice]:
    top, left = int(p[f"{prefix}top{suffix}"][b]), int(p[f"{prefix}left{suffix}"][b])
    return slice(top, top + int(p["height"][b])), slice(left, left + int(p["width"][b]))


def outside(shape: tuple[int, ...], *boxes: tuple[slice, slice]) -> np.ndarray:
    keep = np.ones(shape[:2], bool)
    for rows, cols in boxes:
        keep[rows, cols] = False
    return keep


# --------------------------------------------------------------------------------------------
# CutBlur.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blur_factor", [0.3, (0.15, 0.8)])
@pytest.mark.parametrize("method", METHODS)
def test_cutblur_rectangle_is_the_down_up_resize_and_nothing_else_changes(method, blur_factor):
    x = images(8, "float64", seed=1)
    layer = RandomCutBlur(blur_factor=blur_factor, resize_method=method, patch_area=(0.2, 0.5), seed=3)
    out, p = run(layer, x)
    xs = np_(x)
    for b in range(8):
        low = resize(xs[b], (int(p["low_height"][b]), int(p["low_width"][b])), method)
        blurred = resize(low, SIZE, method)
        rows, cols = box(p, b)
        np.testing.assert_allclose(out[b][rows, cols], blurred[rows, cols], atol=1e-6)  # TF resizes in float32
        keep = outside(SIZE, (rows, cols))
        np.testing.assert_array_equal(out[b][keep], xs[b][keep])
        assert (out[b][rows, cols] != xs[b][rows, cols]).any()
    # Low-resolution sizes: max(1, round(n f)) with halves up, per image.
    for key, n in (("low_height", SIZE[0]), ("low_width", SIZE[1])):
        expected = np.clip(np.floor(p["blur_factor"].astype(np.float64) * n + 0.5), 1, n)
        np.testing.assert_array_equal(p[key], expected)
    if isinstance(blur_factor, tuple):
        assert len(np.unique(p["low_height"])) > 1  # per-image factors
        assert (p["blur_factor"] >= 0.15).all() and (p["blur_factor"] <= 0.8).all()


@pytest.mark.parametrize("dtype", ["uint8", "float16", "bfloat16", "float32"])
def test_cutblur_dtypes_follow_the_float_reference(dtype):
    x = images(4, dtype, seed=2)
    layer = RandomCutBlur(blur_factor=(0.2, 0.5), seed=4)
    out, p = run(layer, x)
    xs = np_(x).astype(np.float64)
    tol = {"uint8": 0.5 + 1e-3, "float16": 2e-3, "bfloat16": 1.6e-2, "float32": 1e-5}[dtype]
    for b in range(4):
        blurred = resize(resize(xs[b], (int(p["low_height"][b]), int(p["low_width"][b])), "bilinear"), SIZE,
                         "bilinear")
        rows, cols = box(p, b)
        np.testing.assert_allclose(out[b][rows, cols], blurred[rows, cols], atol=tol * (1 + (dtype != "uint8")))
    if dtype == "uint8":
        assert out.dtype == np.uint8


@pytest.mark.parametrize("channels_first", [False, True])
@pytest.mark.parametrize("direction", ["hr_to_lr", "lr_to_hr", "random"])
def test_cutblur_pair_direction_semantics(direction, channels_first):
    hr, lr = make_images((16, *SIZE, 3), seed=1), make_images((16, *SIZE, 3), seed=2)
    layout = (0, 3, 1, 2) if channels_first else (0, 1, 2, 3)
    layer = RandomCutBlurPair(direction=direction, augmentation_ratio=0.75, seed=3,
                         data_format="channels_first" if channels_first else None)
    t = params_np(layer.get_random_transformation(lr.transpose(layout)))
    layer = RandomCutBlurPair(direction=direction, augmentation_ratio=0.75, seed=3,
                         data_format="channels_first" if channels_first else None)
    out, target = layer((lr.transpose(layout), hr.transpose(layout)))
    out = np_(out).transpose(0, 2, 3, 1) if channels_first else np_(out)
    np.testing.assert_array_equal(np_(target), hr.transpose(layout))
    assert t["selected"].sum() == 12
    for b in range(16):
        inside = ~outside(SIZE, box(t, b))
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


def test_cutblur_pair_function_and_validation():
    hr, lr = make_images((3, *SIZE, 3), "uint8", seed=1), make_images((3, *SIZE, 3), "uint8", seed=2)
    out, target = cutblur_pair(lr, hr, seed=0)
    assert target is hr and out.dtype == tf.uint8 and tuple(out.shape) == hr.shape
    np.testing.assert_array_equal(np_(cutblur_pair(lr, hr, seed=0)[0]), np_(out))
    single, _ = cutblur_pair(lr[0], hr[0], direction="hr_to_lr", seed=0)
    assert tuple(single.shape) == hr.shape[1:]
    with pytest.raises(ValueError, match="cutblur_pair: direction must be one of"):
        cutblur_pair(lr, hr, direction="both")
    with pytest.raises(ValueError, match=r"cutblur_pair: patch_area must be"):
        cutblur_pair(lr, hr, patch_area=1.5)
    with pytest.raises(ValueError, match="cutblur_pair: lr_upsampled and hr must have the same shape"):
        cutblur_pair(lr[:, :5], hr)
    with pytest.raises(TypeError, match="cutblur_pair: lr_upsampled and hr must have the same dtype"):
        cutblur_pair(lr.astype("float32"), hr)
    with pytest.raises(TypeError, match="cutblur_pair: seed must be an int or None"):
        cutblur_pair(lr, hr, seed=1.5)
    layer = RandomCutBlurPair(direction="lr_to_hr", seed=1)
    ds = tf.data.Dataset.from_tensor_slices((lr, hr)).batch(2).map(lambda a, b: layer((a, b)))
    assert [tuple(a.shape) for a, _ in ds] == [(2, *SIZE, 3), (1, *SIZE, 3)]
    clean, _ = layer((lr, hr), training=False)
    np.testing.assert_array_equal(np_(clean), lr)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    assert keras.saving.deserialize_keras_object(config).get_config() == layer.get_config()


# --------------------------------------------------------------------------------------------
# Cut-Thumbnail.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mix", [False, True])
@pytest.mark.parametrize("method", METHODS)
def test_thumbnail_box_is_a_resize_of_the_whole_image(method, mix):
    b, size = 7, (12, 10)
    x = images(b, "float64", size=size, seed=3)
    y = np.arange(b) % K
    layer = RandomCutThumbnail(thumbnail_area=(0.1, 0.5), resize_method=method, mix_images=mix, num_classes=K,
                               seed=5)
    t = layer.get_random_transformation(x)
    out, p = np_(layer.transform_images(x, t)), params_np(t)
    xs = np_(x)
    source = p["partner"] if mix else np.arange(b)
    if mix:
        assert (p["partner"] != np.arange(b)).all()
    for i in range(b):
        th, tw = int(p["height"][i]), int(p["width"][i])
        assert th == max(1, min(size[0], round(size[0] * np.sqrt(np.float32(p["area"][i])))))
        rows, cols = box(p, i)
        np.testing.assert_allclose(out[i][rows, cols], resize(xs[source[i]], (th, tw), method), atol=1e-6)
        keep = outside(size, (rows, cols))
        np.testing.assert_array_equal(out[i][keep], xs[i][keep])
    assert (p["top"] + p["height"] <= size[0]).all() and (p["left"] + p["width"] <= size[1]).all()
    assert len(np.unique(p["height"])) > 1
    if mix:
        soft = np_(layer.transform_labels(y, t, batch_size=b))
        f = p["height"] * p["width"] / (size[0] * size[1])
        np.testing.assert_array_equal(p["partner_weight"], f.astype(np.float32))
        eye = np.eye(K)[y]
        np.testing.assert_allclose(soft, (1 - f)[:, None] * eye + f[:, None] * eye[p["partner"]], rtol=1e-6)


def test_thumbnail_mixed_calling_convention_and_fixed_area():
    x = images(5, size=(8, 8))
    layer = RandomCutThumbnail(thumbnail_area=0.25, mix_images=True, num_classes=5, seed=1)
    _, soft = layer((x, np.arange(5)))
    assert tuple(soft.shape) == (5, 5) and soft.dtype == tf.float32
    # 0.25 of 8 x 8 is 4 x 4: the label weight is exactly 16 / 64.
    np.testing.assert_allclose(np.sort(np_(soft), axis=1)[:, -2:], [[0.25, 0.75]] * 5, rtol=1e-6)
    d = layer({"images": x, "labels": np.arange(5)})
    assert set(d) == {"images", "labels"}
    with pytest.raises(TypeError, match="RandomCutThumbnail: expected"):
        layer(x)
    with pytest.raises(ValueError, match="RandomCutThumbnail: images must be a batch"):
        layer((x[0], np.arange(1)))
    # One image, or none: passes through, labels made soft.
    for n in (0, 1):
        o, s = layer((x[:n], np.arange(n)))
        np.testing.assert_array_equal(np_(o), np_(x[:n]))
        assert tuple(s.shape) == (n, 5)
    # The plain layer takes images only, a single image too.
    plain = RandomCutThumbnail(seed=0)
    assert tuple(plain(x[0]).shape) == (8, 8, 3)


# --------------------------------------------------------------------------------------------
# CutPaste.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "bfloat16", "float32"])
@pytest.mark.parametrize("channels_first", [False, True])
def test_cutpaste_pastes_the_original_source_pixels(dtype, channels_first):
    x = images(24, dtype, seed=4)
    xs = np_(x)
    layer = RandomCutPaste(patch_area=(0.1, 0.5), seed=6, data_format="channels_first" if channels_first else None)
    xin = keras.ops.transpose(x, (0, 3, 1, 2)) if channels_first else x
    out, p = run(layer, xin)
    if channels_first:
        out = out.transpose(0, 2, 3, 1)
    moved = 0
    for b in range(24):
        dst, src = box(p, b), box(p, b, "src_")
        expected = xs[b].copy()
        expected[dst] = xs[b][src]  # the source's original pixels, even where the boxes overlap
        np.testing.assert_array_equal(out[b], expected)
        moved += (p["top"][b], p["left"][b]) != (p["src_top"][b], p["src_left"][b])
    assert moved == 24  # the destination is another position


def _np_jitter(patch: np.ndarray, mask: np.ndarray, p: dict, b: int, lo: float, hi: float) -> np.ndarray:
    """torchvision's brightness, contrast, saturation blends on the pixels of ``mask``."""
    x = patch.astype(np.float64)

    def grey(v):
        return (v @ np.array([0.2989, 0.587, 0.114]))[..., None] if v.shape[-1] == 3 else v.mean(-1, keepdims=True)

    x = np.clip(lo + (x - lo) * p["brightness"][b], lo, hi)
    mean = grey(x)[mask].mean()
    x = np.clip(mean + (x - mean) * p["contrast"][b], lo, hi)
    g = grey(x)
    return np.clip(g + (x - g) * p["saturation"][b], lo, hi)


@pytest.mark.parametrize("channels", [3, 1])
def test_cutpaste_jitter_changes_only_the_patch(channels):
    x = images(8, "float32", channels=channels, seed=5)
    xs = np_(x)
    layer = RandomCutPaste(color_jitter=0.4, patch_area=0.3, pixels_range=(0.0, 0.8), seed=7)
    out, p = run(layer, x)
    for b in range(8):
        dst, src = box(p, b), box(p, b, "src_")
        keep = outside(SIZE, dst)
        np.testing.assert_array_equal(out[b][keep], xs[b][keep])
        mask = np.ones(out[b][dst].shape[:2], bool)
        expected = _np_jitter(xs[b][src], mask, p, b, 0.0, 0.8)
        np.testing.assert_allclose(out[b][dst], expected, atol=1e-5)
        assert (out[b][dst] != xs[b][src]).any()
        assert out[b][dst].max() <= 0.8


# --------------------------------------------------------------------------------------------
# CutSwap.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "float16", "float64"])
@pytest.mark.parametrize("channels_first", [False, True])
def test_cutswap_exchanges_the_two_regions_exactly(dtype, channels_first):
    x = images(24, dtype, seed=6)
    xs = np_(x)
    layer = RandomCutSwap(patch_area=(0.05, 0.45), seed=8, data_format="channels_first" if channels_first else None)
    out, p = run(layer, keras.ops.transpose(x, (0, 3, 1, 2)) if channels_first else x)
    if channels_first:
        out = out.transpose(0, 2, 3, 1)
    for b in range(24):
        a, c = box(p, b, suffix="_a"), box(p, b, suffix="_b")
        np.testing.assert_array_equal(out[b][a], xs[b][c])
        np.testing.assert_array_equal(out[b][c], xs[b][a])
        keep = outside(SIZE, a, c)
        np.testing.assert_array_equal(out[b][keep], xs[b][keep])


@pytest.mark.parametrize("size", [(11, 9), (2, 9), (1, 5), (5, 1), (2, 2), (16, 3)])
@pytest.mark.parametrize("area", [(0.05, 0.3), (0.4, 0.9), 0.49])
def test_cutswap_patches_never_overlap_and_stay_inside(size, area):
    height, width = size
    for seed in range(3):
        layer = RandomCutSwap(patch_area=area, patch_aspect_ratio=(0.2, 5.0), seed=seed)
        p = params_np(layer.get_random_transformation(np.zeros((400, *size, 1), "float32")))
        h, w = p["height"], p["width"]
        assert (h >= 1).all() and (w >= 1).all()
        for s in ("_a", "_b"):
            top, left = p["top" + s], p["left" + s]
            assert (top >= 0).all() and (left >= 0).all()
            assert (top + h <= height).all() and (left + w <= width).all()
        disjoint = (np.abs(p["top_a"] - p["top_b"]) >= h) | (np.abs(p["left_a"] - p["left_b"]) >= w)
        assert disjoint.all()
        assert p["selected"].all()


def test_cutswap_one_pixel_images_pass_through_unaugmented():
    x = images(3, size=(1, 1))
    out, flags = RandomCutSwap(return_labels=True, seed=0)(x)
    np.testing.assert_array_equal(np_(out), np_(x))
    np.testing.assert_array_equal(np_(flags), [0, 0, 0])


def test_cutblur_pair_layer_checks_its_pair_like_the_function():
    """The layer refuses what cutblur_pair refuses (it returned float32 for a uint8 LR input)."""
    lr, hr = images(2), images(2, seed=1)
    layer = RandomCutBlurPair(seed=0)
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


@pytest.mark.parametrize("size", [(1, 1), (1, 2), (2, 1), (1, 5)])
def test_cutpaste_labels_only_images_whose_pixels_moved(size):
    """On thin images the patch may fill the image (one position: nothing moves); such an image
    is not augmented. is_augmented must be exactly the images that changed."""
    x = np.arange(64 * size[0] * size[1], dtype="float32").reshape(64, *size, 1)  # distinct pixels
    out, flags = RandomCutPaste(return_labels=True, patch_aspect_ratio=(0.01, 100.0), seed=3)(x)
    moved = (np_(out) != x).reshape(64, -1).any(1)
    np.testing.assert_array_equal(np_(flags), moved.astype(np.int64))
    if size == (1, 1):
        assert not moved.any()


# --------------------------------------------------------------------------------------------
# torch: the Keras torch backend, and agreement with the torch transforms.
# --------------------------------------------------------------------------------------------

#: The pixel semantics of the pasting layers on the Keras torch backend (every layer's conventions
#: on each backend: ``tests/contracts/test_keras_conventions.py``).
BACKEND_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, keras
    from maskmix.keras import RandomCutPaste, RandomCutSwap, RandomCutThumbnail, cutblur_pair
    assert keras.backend.backend() == sys.argv[1]
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 0.9, (5, 9, 8, 3)).astype("float32")
    y = np.arange(5) % 4
    np_ = keras.ops.convert_to_numpy
    # CutSwap and CutPaste move exactly their boxes.
    layer = RandomCutSwap(return_labels=False, seed=2)
    t = layer.get_random_transformation(x)
    out = np_(layer.transform_images(x, t))
    p = {k: np_(v) for k, v in t.items()}
    for b in range(5):
        h, w = p["height"][b], p["width"][b]
        a = (slice(p["top_a"][b], p["top_a"][b] + h), slice(p["left_a"][b], p["left_a"][b] + w))
        c = (slice(p["top_b"][b], p["top_b"][b] + h), slice(p["left_b"][b], p["left_b"][b] + w))
        assert (out[b][a] == x[b][c]).all() and (out[b][c] == x[b][a]).all()
    pair, target = cutblur_pair(x * 0.5, x, direction="hr_to_lr", seed=1)
    assert target is x and ((np_(pair) == x).any(-1) == (np_(pair) != x * 0.5).any(-1)).all()
    out, flags = RandomCutPaste(return_labels=True, augmentation_ratio=0.4, seed=3)(x)
    assert np_(flags).tolist().count(1) == 2, np_(flags)
    # Mixed thumbnails: labels weigh the thumbnail's pixel area.
    layer = RandomCutThumbnail(mix_images=True, thumbnail_area=0.25, num_classes=4, seed=4)
    t = layer.get_random_transformation(x)
    soft = np_(layer.transform_labels(y, t))
    f = np_(t["height"] * t["width"]) / 72
    eye = np.eye(4)[y]
    np.testing.assert_allclose(soft, (1 - f)[:, None] * eye + f[:, None] * eye[np_(t["partner"])], rtol=1e-6)
    print("backend ok", sys.argv[1])
    """
)


@pytest.mark.slow
def test_torch_backend():
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", BACKEND_SCRIPT, "torch"], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "backend ok torch" in result.stdout


@pytest.mark.slow
def test_agreement_with_the_torch_transforms():
    """Same distributions of sampled sizes and positions (two-sample KS tests) and, for the same
    parameters, the same pixels as the torch transforms."""
    torch = pytest.importorskip("torch")
    import maskmix.torch as mt

    n, size = 3000, (24, 20)
    configs = {
        "cutblur": ("RandomCutBlur", dict(patch_area=(0.05, 0.3), blur_factor=(0.1, 0.5))),
        "cutpaste": ("RandomCutPaste", dict(patch_area=(0.02, 0.15), patch_aspect_ratio=(0.3, 3.3), color_jitter=0.3)),
        "cutswap": ("RandomCutSwap", dict(patch_area=(0.1, 0.45))),
        "thumbnail": ("RandomCutThumbnail", dict(thumbnail_area=(0.05, 0.5), resize_method="bicubic")),
        "thumbnail_mix": ("RandomCutThumbnail", dict(thumbnail_area=(0.05, 0.5), mix_images=True, num_classes=K)),
    }
    zeros = np.zeros((n, *size, 1), "float32")
    x = images(6, size=size, seed=8)
    generator = torch.Generator().manual_seed(0)
    cpu = torch.device("cpu")
    for seed, (name, (cls_name, config)) in enumerate(configs.items()):
        layer = getattr(__import__("maskmix.keras", fromlist=[cls_name]), cls_name)(seed=seed, **config)
        transform = getattr(mt, cls_name)(**config)
        ours = params_np(layer.get_random_transformation(zeros))
        theirs = {k: v.numpy() for k, v in transform.sample(n, 1, *size, dtype=torch.float32, device=cpu,
                                                             generator=generator).items()}

        def ks(values, ours=ours, theirs=theirs, name=name) -> None:
            a, b = values(ours).astype(np.float64), values(theirs).astype(np.float64)
            assert scipy.stats.ks_2samp(a, b).pvalue > 1e-3, (name, a.mean(), b.mean())

        ks(lambda p: p["height"] * p["width"])
        ks(lambda p: p["height"] / p["width"])
        if name == "cutblur":
            ks(lambda p: p["low_height"] * 100 + p["low_width"])
        prefixes = {"cutpaste": ("", "src_"), "cutswap": ("_a", "_b")}.get(name, ("",))
        for fix in prefixes:
            top, left = ("top" + fix, "left" + fix) if fix.startswith("_") else (fix + "top", fix + "left")
            ks(lambda p, top=top, left=left: p[top] * 100 + p[left])
        if name == "thumbnail_mix":  # float32 in Keras, float64 in torch: compared in float32
            ks(lambda p: p["partner_weight"].astype(np.float32))
        # The Keras layer's parameters through the torch transform's pixels.
        out, p = run(layer, x) if name != "thumbnail_mix" else (None, None)
        if out is None:
            t = layer.get_random_transformation(x)
            out, p = np_(layer.transform_images(x, t)), params_np(t)
        tp = {k: torch.from_numpy(v.astype(np.int64) if v.dtype == np.int32 else v) for k, v in p.items()}
        expected = transform.apply(torch.from_numpy(np_(x)).permute(0, 3, 1, 2), tp).permute(0, 2, 3, 1).numpy()
        exact = name in ("cutswap",) or (name == "cutpaste" and not config.get("color_jitter"))
        np.testing.assert_allclose(out, expected, atol=0 if exact else 2e-6, err_msg=name)
