"""Keras masking layers: exact pixel accounting against independent reference masks, fills, sampling rules."""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

import numpy as np
import pytest
import scipy.stats
from keras_helpers import (
    changed_pixels,
    make_images,
    np_,
    reference_box_mask,
    reference_grid_mask,
    reference_hide_and_seek,
    run_with_params,
    to_tensor,
)

from maskmix.keras import RandomCutout, RandomErasing, RandomGridMask, RandomHideAndSeek

SIZE = (13, 11)


def images(batch: int = 16, dtype: str = "float32", size=SIZE, channels: int = 3, seed: int = 0):
    return to_tensor(make_images((batch, *size, channels), dtype, seed=seed), dtype)


# --------------------------------------------------------------------------------------------
# Pixel accounting: changed pixels == reference region computed from the sampled parameters.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("allow_partial", [False, True])
@pytest.mark.parametrize("patch_area", [0.1, (0.05, 0.5)])
def test_cutout_pixel_accounting(allow_partial, patch_area):
    x = images(64)
    layer = RandomCutout(patch_area=patch_area, allow_partial=allow_partial, seed=1)
    out, p = run_with_params(layer, x)
    expected = reference_box_mask(p["top"], p["left"], p["height"], p["width"], SIZE)
    np.testing.assert_array_equal(changed_pixels(np_(x), out), expected)
    np.testing.assert_array_equal(out[expected[..., None].repeat(3, -1)], 0.0)
    lo, hi = (patch_area, patch_area) if isinstance(patch_area, float) else patch_area
    side_lo = max(1, round(np.sqrt(lo * SIZE[0] * SIZE[1])))
    side_hi = round(np.sqrt(hi * SIZE[0] * SIZE[1]))
    if not allow_partial:
        np.testing.assert_array_equal(p["height"], p["width"])
        assert (p["height"] >= side_lo).all() and (p["height"] <= min(side_hi, *SIZE)).all()
        assert (p["top"] + p["height"] <= SIZE[0]).all() and (p["left"] + p["width"] <= SIZE[1]).all()
    else:
        assert (p["height"] <= side_hi).all() and (p["width"] <= side_hi).all()
        assert (p["top"] >= 0).all() and (p["top"] + p["height"] <= SIZE[0]).all()


def test_cutout_partial_clips_at_the_border():
    layer = RandomCutout(patch_area=0.6, allow_partial=True, seed=3)
    p = {k: np_(v) for k, v in layer.get_random_transformation(images(256)).items()}
    side = round(np.sqrt(0.6 * SIZE[0] * SIZE[1]))
    assert (p["height"] < side).any() and (p["height"] * p["width"] < side * side).any()


@pytest.mark.parametrize("patch_count", [1, (1, 4)])
def test_erasing_pixel_accounting(patch_count):
    x = images(64)
    layer = RandomErasing(patch_count=patch_count, seed=2)
    out, p = run_with_params(layer, x)
    expected = reference_box_mask(p["top"], p["left"], p["height"], p["width"], SIZE, active=p["active"])
    np.testing.assert_array_equal(changed_pixels(np_(x), out), expected)
    assert (p["top"] + p["height"] <= SIZE[0]).all() and (p["left"] + p["width"] <= SIZE[1]).all()
    lo, hi = (patch_count, patch_count) if isinstance(patch_count, int) else patch_count
    assert p["active"].shape == (64, hi)
    np.testing.assert_array_equal(p["active"].sum(1), p["count"])
    assert p["count"].min() >= lo and p["count"].max() <= hi
    if hi > lo:
        assert len(set(p["count"].tolist())) > 1


def test_erasing_area_split_between_patches():
    """Each of n patches gets area a / n (timm): total area ~ the configured range."""
    layer = RandomErasing(patch_area=0.2, patch_aspect_ratio=1.0, patch_count=(1, 4), seed=5)
    p = {k: np_(v) for k, v in layer.get_random_transformation(images(200, size=(64, 64))).items()}
    side = np.sqrt(0.2 * 64 * 64 / p["count"])
    first = p["height"][:, 0]
    assert np.all(np.abs(first - side) <= 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [dict(grid_size=(3, 4), erased_patches=(0, 12)), dict(grid_size=[2, (3, 5), 4], erased_patches=3),
     dict(grid_size=4, hide_prob=0.5)],
)
def test_hide_and_seek_pixel_accounting(kwargs):
    x = images(48)
    layer = RandomHideAndSeek(seed=3, **kwargs)
    out, p = run_with_params(layer, x)
    expected = reference_hide_and_seek(p["rows"], p["cols"], p["hidden"], SIZE)
    np.testing.assert_array_equal(changed_pixels(np_(x), out), expected)
    np.testing.assert_array_equal(p["hidden"].sum((1, 2)), p["count"])
    valid = (np.arange(p["hidden"].shape[1])[None, :, None] < p["rows"][:, None, None]) & (
        np.arange(p["hidden"].shape[2])[None, None, :] < p["cols"][:, None, None]
    )
    assert not (p["hidden"] & ~valid).any()
    if "erased_patches" in kwargs:
        erased = kwargs["erased_patches"]
        lo, hi = (erased, erased) if isinstance(erased, int) else erased
        np.testing.assert_array_equal(p["count"], np.clip(p["count"], lo, np.minimum(hi, p["rows"] * p["cols"])))


def test_hide_and_seek_grid_candidates_and_counts_are_uniform():
    layer = RandomHideAndSeek(grid_size=[2, (3, 5)], erased_patches=(0, 3), seed=7)
    p = {k: np_(v) for k, v in layer.get_random_transformation(images(2000, size=(6, 10), channels=1)).items()}
    assert abs((p["rows"] == 2).mean() - 0.5) < 0.05
    counts = np.bincount(p["count"], minlength=4) / 2000
    np.testing.assert_allclose(counts, 0.25, atol=0.04)


@pytest.mark.parametrize("rotation", [0.0, 90.0])
def test_grid_mask_pixel_accounting(rotation):
    x = images(12)
    layer = RandomGridMask(unit_length=(0.3, 0.8), masked_ratio=(0.3, 0.7), rotation=rotation, seed=4)
    out, p = run_with_params(layer, x)
    expected = reference_grid_mask(p, SIZE)
    changed = changed_pixels(np_(x), out)
    if rotation == 0:
        np.testing.assert_array_equal(changed, expected)
    else:  # float32 trigonometry may flip a pixel sitting exactly on a boundary
        assert (changed != expected).mean() < 0.01
    assert (p["unit"] >= 2).all() and (p["masked"] >= 1).all() and (p["masked"] <= p["unit"] - 1).all()
    assert (p["offset_y"] < p["unit"]).all() and (p["offset_x"] < p["unit"]).all()


def test_grid_mask_unit_range():
    layer = RandomGridMask(unit_length=(0.2, 0.4), seed=0)
    p = {k: np_(v) for k, v in layer.get_random_transformation(images(500, size=(50, 60), channels=1)).items()}
    assert p["unit"].min() >= 10 and p["unit"].max() <= 20
    np.testing.assert_array_equal(p["masked"], np.clip(np.round(0.5 * p["unit"]), 1, p["unit"] - 1))


# --------------------------------------------------------------------------------------------
# Fill methods.
# --------------------------------------------------------------------------------------------


def _filled(fill_method, dtype="float32", pixels_range=None, channels=3, batch=8):
    x = images(batch, dtype, channels=channels)
    layer = RandomCutout(patch_area=0.3, fill_method=fill_method, pixels_range=pixels_range, seed=11)
    out, p = run_with_params(layer, x)
    region = reference_box_mask(p["top"], p["left"], p["height"], p["width"], SIZE)
    return np_(x), out, region, p


@pytest.mark.parametrize(
    ("method", "value"), [("black", 0.0), ("white", 1.0), ("gray", 0.5), ("zero", 0.0), (0.25, 0.25)]
)
def test_constant_fills(method, value):
    _, out, region, _ = _filled(method)
    np.testing.assert_array_equal(out[region], np.full_like(out[region], value))


def test_fills_follow_pixels_range_and_uint8_rounding():
    _, out, region, _ = _filled("white", pixels_range=(-2.0, 3.0))
    assert (out[region] == 3.0).all()
    _, out, region, _ = _filled("gray", dtype="uint8")
    assert out.dtype == np.uint8 and (out[region] == 128).all()  # 127.5 rounds half to even
    _, out, region, _ = _filled(300.0, dtype="uint8")
    assert (out[region] == 255).all()


def test_per_channel_constant_fill_and_channel_mismatch():
    _, out, region, _ = _filled((0.1, 0.2, 0.3))
    np.testing.assert_allclose(out[region], np.broadcast_to([0.1, 0.2, 0.3], out[region].shape), rtol=1e-6)
    with pytest.raises(ValueError, match="fill_method has 2 values but the images have 3 channel"):
        RandomCutout(fill_method=(0.1, 0.2))(images(2))


def test_mean_per_channel_fill():
    x, out, region, _ = _filled("mean_per_channel")
    means = x.mean(axis=(1, 2))
    for b in range(len(x)):
        np.testing.assert_allclose(out[b][region[b]], np.broadcast_to(means[b], out[b][region[b]].shape), rtol=1e-5)


def test_random_and_normal_per_patch_are_one_colour_per_image():
    for method in ("random", "normal_per_patch"):
        _, out, region, p = _filled(method, pixels_range=(-1.0, 2.0))
        colours = p["fill_values"].reshape(len(out), 3)
        for b in range(len(out)):
            np.testing.assert_allclose(out[b][region[b]], np.broadcast_to(colours[b], out[b][region[b]].shape))
        if method == "random":
            assert colours.min() >= -1.0 and colours.max() <= 2.0
        assert len(np.unique(colours[:, 0])) == len(out)


def test_noise_and_normal_are_per_pixel():
    _, out, region, _ = _filled("noise", batch=32)
    values = out[region]
    assert values.min() >= 0.0 and values.max() <= 1.0 and len(np.unique(values)) > values.size // 2
    _, out, region, _ = _filled("normal", batch=64)
    values = out[region]
    assert abs(values.mean()) < 0.1 and abs(values.std() - 1.0) < 0.1


@pytest.mark.parametrize("layer_cls", [RandomCutout, RandomErasing, RandomHideAndSeek, RandomGridMask])
@pytest.mark.parametrize("fill", ["noise", "normal", "mean_per_channel", "random"])
def test_fills_on_every_dtype(layer_cls, fill):
    for dtype in ("uint8", "float16", "bfloat16", "float64"):
        x = images(3, dtype)
        out = layer_cls(fill_method=fill, seed=0)(x)
        assert out.dtype == x.dtype and tuple(out.shape) == tuple(x.shape)


@pytest.mark.parametrize(("aspect", "line"), [(1e40, "column"), (1e-40, "row")])
def test_extreme_aspect_ratios_give_one_pixel_lines(aspect: float, line: str) -> None:
    """Aspect ratios beyond float32 are valid (> 0): a full-length line one pixel wide, no overflow."""
    x = images(16, size=(12, 10))
    out = np.asarray(RandomErasing(patch_aspect_ratio=aspect, patch_area=0.3, seed=1)(x))
    changed = (out != np.asarray(x)).any(-1)
    rows, cols = changed.any(2).sum(1), changed.any(1).sum(1)
    if line == "column":
        assert (cols == 1).all() and (rows >= 11).sum() >= 14  # a pixel may keep its value by chance
    else:
        assert (rows == 1).all() and (cols >= 9).sum() >= 14


@pytest.mark.parametrize("fill", ["random", "noise"])
def test_uint8_random_fills_are_uniform_over_every_level(fill: str) -> None:
    """uint8 fills are rounded: every level of 0..255 equally likely, the two end levels too."""
    layer = RandomCutout(fill_method=fill, seed=11)
    x = np.zeros((4000 if fill == "random" else 40, 32, 32, 3), "uint8")
    drawn = np_(layer.fill_for(to_tensor(x, "uint8"), layer.get_random_transformation(x)))
    counts = np.bincount(drawn.astype(np.int64).ravel(), minlength=256)
    assert counts.size == 256 and counts.sum() >= 12000
    assert scipy.stats.chisquare(counts).pvalue > 1e-4
    assert counts[[0, 255]].mean() > 0.75 * counts[1:255].mean()
