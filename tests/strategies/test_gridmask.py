"""GridMask (``RandomGridMask``), torch and Keras: the erased pixels are exactly the region of the
documented modulo formula, rotated or not (``tests/references.py``); unit, masked side, offsets
and angles follow their formulas and distributions. The fills every masking strategy shares:
``test_fills.py``.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import math

import numpy as np
import pytest
from helpers import changed_pixels, gen, make_images, run_with_params
from masking_cases import (
    N,
    assert_frequencies,
    check_changed_pixels_are_exactly_the_region,
    check_values_outside_the_region_survive_bit_identical,
    ks_limit,
    pixel_cases,
    sample,
)
from scipy import stats

from maskmix.keras import RandomGridMask as KerasRandomGridMask
from maskmix.torch import RandomGridMask

# --------------------------------------------------------------------------------------------
# torch: pixel accounting.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shape", "dtype"), pixel_cases('grid_mask', 'grid_mask_rotated'))
def test_torch_changed_pixels_are_exactly_the_region_from_params(name, shape, dtype) -> None:
    check_changed_pixels_are_exactly_the_region(name, shape, dtype)


@pytest.mark.parametrize("name", ['grid_mask'])
def test_torch_values_outside_the_region_survive_bit_identical(name) -> None:
    check_values_outside_the_region_survive_bit_identical(name)


# --------------------------------------------------------------------------------------------
# torch: geometry.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "unit_length", "masked_ratio", "unit", "masked"),
    [
        ((96, 128), 0.25, 0.5, 24, 12),
        ((128, 96), 0.25, 0.5, 24, 12),  # the unit is relative to min(H, W)
        ((37, 53), 1.0, 0.5, 37, 18),  # round(18.5) half to even
        ((37, 53), 0.01, 0.5, 2, 1),  # at least 2 px, masked in [1, d - 1]
        ((40, 40), 0.5, 0.99, 20, 19),  # round(19.8) = 20, clamped to d - 1
        ((40, 40), 0.5, 0.01, 20, 1),  # round(0.2) = 0, at least 1
    ],
)
def test_torch_grid_mask_unit_and_masked_sizes(size, unit_length, masked_ratio, unit, masked) -> None:
    transform = RandomGridMask(unit_length=unit_length, masked_ratio=masked_ratio, generator=gen(19))
    params = sample(transform, size, n=1000)
    assert (params["unit"] == unit).all() and (params["masked"] == masked).all()
    for key in ("offset_y", "offset_x"):
        assert params[key].min() == 0 and params[key].max() == unit - 1
    assert "angle" not in params


def test_torch_grid_mask_rotation_keeps_the_masked_fraction() -> None:
    # A rotated grid of 40 px units with 20 px squares still masks about a quarter of the image.
    images = make_images((32, 1, 160, 160), seed=20)
    out, params = run_with_params(
        RandomGridMask(unit_length=0.25, masked_ratio=0.5, rotation=360, generator=gen(21)), images
    )
    assert (params["angle"].abs() <= math.radians(360) + 1e-6).all()
    fraction = changed_pixels(images, out).float().mean().item()
    assert abs(fraction - 0.25) < 0.02


# --------------------------------------------------------------------------------------------
# torch: sampling statistics.
# --------------------------------------------------------------------------------------------


def rounded_uniform_probabilities(lo: float, hi: float) -> dict[int, float]:
    """P(round(X) = k) for X uniform on [lo, hi]."""
    return {
        k: (min(hi, k + 0.5) - max(lo, k - 0.5)) / (hi - lo)
        for k in range(math.floor(lo), math.ceil(hi) + 1)
        if min(hi, k + 0.5) > max(lo, k - 0.5)
    }


@pytest.mark.parametrize(
    ("size", "unit_length"), [((96, 128), (0.2, 0.4)), ((128, 96), (0.2, 0.4)), ((50, 50), (0.1, 1.0))]
)
def test_torch_grid_mask_unit_sizes(size, unit_length) -> None:
    # d = round(u * min(H, W)) with u uniform: end values have partial probability. Using max(H, W)
    # or a uniform integer in [lo, hi] fails the chi-square.
    params = sample(RandomGridMask(unit_length=unit_length, generator=gen(33)), size)
    lo, hi = (u * min(size) for u in unit_length)
    probabilities = rounded_uniform_probabilities(lo, hi)
    units = params["unit"].numpy()
    top = max(probabilities) + 1
    observed = np.bincount(units, minlength=top)
    assert len(observed) == top
    assert_frequencies(observed, np.array([probabilities.get(k, 0.0) for k in range(top)]))


@pytest.mark.parametrize(
    ("unit_length", "masked_ratio"), [((0.2, 0.4), 0.5), ((0.2, 0.4), (0.3, 0.7)), (0.25, (0.1, 0.9))]
)
def test_torch_grid_mask_masked_fraction(unit_length, masked_ratio) -> None:
    # Given d and l, uniform offsets make every row masked with probability l / d, independently of
    # the columns, so E[masked fraction] = E[(l / d)^2] exactly. The expectation is computed from
    # the documented distributions of d and l; the masked fraction of each image is measured from
    # its params with the documented modulo formula. Would fail for l / d instead of (l / d)^2, a
    # masked side of m * d unrounded into [1, d - 1] on the wrong scale, or fixed offsets.
    size = (96, 128)
    transform = RandomGridMask(unit_length=unit_length, masked_ratio=masked_ratio, generator=gen(34))
    params = sample(transform, size)
    ulo, uhi = (unit_length, unit_length) if isinstance(unit_length, float) else unit_length
    mlo, mhi = (masked_ratio, masked_ratio) if isinstance(masked_ratio, float) else masked_ratio
    if ulo == uhi:
        unit_probabilities = {round(ulo * 96): 1.0}
    else:
        unit_probabilities = rounded_uniform_probabilities(ulo * 96, uhi * 96)
    expected = 0.0
    for d, p_d in unit_probabilities.items():
        if mlo == mhi:
            masked = {round(mlo * d): 1.0}
        else:
            masked = rounded_uniform_probabilities(mlo * d, mhi * d)
        for k, p_k in masked.items():
            expected += p_d * p_k * (min(max(k, 1), d - 1) / d) ** 2
    d, m = params["unit"].numpy()[:, None], params["masked"].numpy()[:, None]
    row_fraction = (((np.arange(size[0])[None] + params["offset_y"].numpy()[:, None]) % d) < m).mean(1)
    col_fraction = (((np.arange(size[1])[None] + params["offset_x"].numpy()[:, None]) % d) < m).mean(1)
    fraction = row_fraction * col_fraction
    standard_error = fraction.std(ddof=1) / math.sqrt(fraction.size)
    assert abs(fraction.mean() - expected) < 5 * standard_error + 1e-9


def test_torch_grid_mask_offsets_are_uniform() -> None:
    params = sample(RandomGridMask(unit_length=0.25, generator=gen(35)), (96, 128))
    assert (params["unit"] == 24).all()
    for key in ("offset_y", "offset_x"):
        observed = np.bincount(params[key].numpy(), minlength=24)
        assert len(observed) == 24
        assert_frequencies(observed, np.full(24, 1 / 24))
    # The two offsets are independent draws.
    assert abs(np.corrcoef(params["offset_y"].numpy(), params["offset_x"].numpy())[0, 1]) < 5 / math.sqrt(N)


@pytest.mark.parametrize("rotation", [1.0, 30.0, 360.0])
def test_torch_grid_mask_rotation_angles_are_uniform(rotation) -> None:
    # The angle is stored in radians; in degrees it is uniform on [-rotation, rotation]. A [0, rotation]
    # range or a radians/degrees mix-up gives D >= 0.5.
    params = sample(RandomGridMask(rotation=rotation, generator=gen(36)), (32, 32))
    degrees = np.degrees(params["angle"].numpy().astype(np.float64))
    assert stats.kstest(degrees, stats.uniform(-rotation, 2 * rotation).cdf).statistic <= ks_limit(N)
    assert -rotation * (1 + 1e-6) <= degrees.min() <= -rotation * 0.995
    assert rotation * 0.995 <= degrees.max() <= rotation * (1 + 1e-6)


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size.
KERAS_SIZE = (13, 11)


def keras_images(batch: int = 16, dtype: str = "float32", size=KERAS_SIZE, channels: int = 3, seed: int = 0):
    return kh.to_tensor(kh.make_images((batch, *size, channels), dtype, seed=seed), dtype)


@pytest.mark.parametrize("rotation", [0.0, 90.0])
def test_keras_grid_mask_pixel_accounting(rotation):
    x = keras_images(12)
    layer = KerasRandomGridMask(unit_length=(0.3, 0.8), masked_ratio=(0.3, 0.7), rotation=rotation, seed=4)
    out, p = kh.run_with_params(layer, x)
    expected = kh.reference_grid_mask(p, KERAS_SIZE)
    changed = kh.changed_pixels(kh.np_(x), out)
    if rotation == 0:
        np.testing.assert_array_equal(changed, expected)
    else:  # float32 trigonometry may flip a pixel sitting exactly on a boundary
        assert (changed != expected).mean() < 0.01
    assert (p["unit"] >= 2).all() and (p["masked"] >= 1).all() and (p["masked"] <= p["unit"] - 1).all()
    assert (p["offset_y"] < p["unit"]).all() and (p["offset_x"] < p["unit"]).all()


def test_keras_grid_mask_unit_range():
    layer = KerasRandomGridMask(unit_length=(0.2, 0.4), seed=0)
    p = {k: kh.np_(v) for k, v in layer.get_random_transformation(keras_images(500, size=(50, 60), channels=1)).items()}
    assert p["unit"].min() >= 10 and p["unit"].max() <= 20
    np.testing.assert_array_equal(p["masked"], np.clip(np.round(0.5 * p["unit"]), 1, p["unit"] - 1))


# --------------------------------------------------------------------------------------------
# The options of the paper's code (from_paper; tests/papers/test_gridmask_paper.py compares them
# with the official sampler).
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [RandomGridMask, KerasRandomGridMask], ids=["torch", "keras"])
def test_paper_options_are_validated_by_name(cls) -> None:
    with pytest.raises(ValueError, match=r"^RandomGridMask: unit_pixels must be an integer >= 2 or a pair "
                                         r"\(lo, hi\) of integers with 2 <= lo <= hi, hi may be None; got 1$"):
        cls(unit_pixels=1)
    with pytest.raises(ValueError, match=r"^RandomGridMask: unit_pixels .*; got \(8, 4\)$"):
        cls(unit_pixels=(8, 4))
    with pytest.raises(TypeError, match=r"^RandomGridMask: unit_pixels .*; got \(None, 4\)$"):
        cls(unit_pixels=(None, 4))
    with pytest.raises(ValueError, match=r"^RandomGridMask: kept_ratio must be a float in \(0, 1\); got 1\.0$"):
        cls(kept_ratio=1.0)
    with pytest.raises(TypeError, match=r"^RandomGridMask: whole_degrees must be a bool; got 'yes'$"):
        cls(whole_degrees="yes")
    with pytest.raises(TypeError, match=r"^RandomGridMask: invert must be a bool; got 0$"):
        cls(invert=0)
    assert cls(unit_pixels=[96, None]).unit_pixels == (96, None)
    assert cls(unit_pixels=5).unit_pixels == (5, 5)


def test_kept_band_is_pythons_ceil_on_both_frameworks() -> None:
    """``ceil(0.6 * 25)`` is 15 in float64 (Python, the official code) and 16 in float32: with a
    25-pixel unit the masked square is 10 pixels a side, also on Keras with an unknown image size."""
    import tensorflow as tf

    x = make_images((4, 1, 50, 50))
    out = RandomGridMask(unit_pixels=25, kept_ratio=0.6, generator=gen(0))(x)
    # Columns are masked iff (x + ox) mod 25 < 10: 20 of the 50, whatever the offset.
    assert changed_pixels(x, out).any(dim=1).sum().item() == 4 * 20
    layer = KerasRandomGridMask(unit_pixels=25, kept_ratio=0.6, seed=0)
    xs = kh.make_images((4, 50, 50, 1))
    static = np.asarray(layer(xs)) != xs
    dynamic = np.asarray(tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, 1])])(xs)) != xs
    for masks in (static, dynamic):
        assert masks[..., 0].any(axis=1).sum() == 4 * 20


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_invert_masks_exactly_the_other_pixels(framework: str) -> None:
    options = {"unit_pixels": (3, None), "kept_ratio": 0.5, "rotation": 90, "whole_degrees": True}
    if framework == "torch":
        x = make_images((6, 1, 17, 23))
        squares = changed_pixels(x, RandomGridMask(generator=gen(1), **options)(x))
        bands = changed_pixels(x, RandomGridMask(invert=True, generator=gen(1), **options)(x))
        assert bool((squares == ~bands).all())
    else:
        xs = kh.make_images((6, 17, 23, 1))
        squares = np.asarray(KerasRandomGridMask(seed=1, **options)(xs)) != xs
        bands = np.asarray(KerasRandomGridMask(invert=True, seed=1, **options)(xs)) != xs
        assert np.array_equal(squares, ~bands)

