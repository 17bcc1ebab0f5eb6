"""Cutout (``RandomCutout``), torch and Keras: the erased pixels are exactly the square rebuilt by
slicing from the sampled parameters (``tests/references.py``), sides and placements follow the
documented formulas and distributions, ``allow_partial`` clips a square centred on any pixel.
The fills every masking strategy shares: ``test_fills.py``.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import math

import numpy as np
import pytest
import torch
from helpers import changed_pixels, gen, make_images, reference_box_mask, run_with_params
from masking_cases import (
    assert_frequencies,
    check_area_fractions_are_uniform_over_the_range,
    check_boxes_are_placed_uniformly_inside,
    check_changed_pixels_are_exactly_the_region,
    check_values_outside_the_region_survive_bit_identical,
    pixel_cases,
    sample,
)

from maskmix.keras import RandomCutout as KerasRandomCutout
from maskmix.torch import RandomCutout

# --------------------------------------------------------------------------------------------
# torch: pixel accounting.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shape", "dtype"), pixel_cases('cutout', 'cutout_partial'))
def test_torch_changed_pixels_are_exactly_the_region_from_params(name, shape, dtype) -> None:
    check_changed_pixels_are_exactly_the_region(name, shape, dtype)


@pytest.mark.parametrize("name", ['cutout', 'cutout_partial'])
def test_torch_values_outside_the_region_survive_bit_identical(name) -> None:
    check_values_outside_the_region_survive_bit_identical(name)


# --------------------------------------------------------------------------------------------
# torch: geometry and sampling.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "area", "side"),
    [
        ((32, 32), 0.25, 16),  # the paper's 16 px on CIFAR
        ((37, 53), 0.1, 14),  # round(sqrt(196.1))
        ((53, 37), 0.1, 14),
        ((37, 53), 0.9, 37),  # round(sqrt(1764.9)) = 42, capped at min(H, W)
        ((53, 37), 0.9, 37),
        ((5, 200), 0.5, 5),
        ((40, 40), 1e-4, 1),  # round(0.4) = 0, at least 1
        ((1, 1), 0.5, 1),
    ],
)
def test_torch_cutout_square_side_and_inside(size, area, side) -> None:
    params = sample(RandomCutout(patch_area=area, generator=gen(11)), size, n=2000)
    height, width = size
    assert (params["height"] == side).all() and (params["width"] == side).all()
    top, left = params["top"], params["left"]
    assert (top >= 0).all() and (top <= height - side).all()
    assert (left >= 0).all() and (left <= width - side).all()
    if height > side:
        assert top.unique().numel() == height - side + 1  # every position is used


def test_torch_cutout_range_sides_are_rounded_square_roots() -> None:
    params = sample(RandomCutout(patch_area=(0.05, 0.4), generator=gen(12)), (37, 53), n=2000)
    side = params["height"]
    assert torch.equal(side, params["width"])
    assert side.min() == round(math.sqrt(0.05 * 1961)) and side.max() == round(math.sqrt(0.4 * 1961))
    assert ((params["top"] + side) <= 37).all() and ((params["left"] + side) <= 53).all()


def centre_candidates(start: int, length: int, side: int, size: int) -> list[int]:
    """Centres c in [0, size) whose square [c - side // 2, c - side // 2 + side) clips to this span."""
    return [
        c
        for c in range(size)
        if min(max(c - side // 2, 0), size) == start and min(max(c - side // 2 + side, 0), size) == start + length
    ]


@pytest.mark.parametrize(("size", "area", "side"), [((37, 53), 0.1, 14), ((32, 32), 0.25, 16), ((20, 9), 0.3, 7)])
def test_torch_cutout_allow_partial_clips_a_square_centred_on_a_pixel(size, area, side) -> None:
    height, width = size
    assert round(math.sqrt(area * height * width)) == side
    transform = RandomCutout(patch_area=area, allow_partial=True, generator=gen(13))
    params = sample(transform, size, n=400)
    partial = 0
    for top, left, h, w in zip(*(params[k].tolist() for k in ("top", "left", "height", "width")), strict=True):
        assert 1 <= h <= side and 1 <= w <= side
        assert len(centre_candidates(top, h, side, height)) == 1
        assert len(centre_candidates(left, w, side, width)) == 1
        partial += (h, w) != (side, side)
    assert 0 < partial < 400  # both clipped and whole squares occur
    # The pixels follow the clipped boxes (and nothing is erased outside the image).
    images = make_images((16, 3, height, width), seed=14)
    out, params = run_with_params(RandomCutout(patch_area=area, allow_partial=True, generator=gen(15)), images)
    region = reference_box_mask(params["top"], params["left"], params["height"], params["width"], size)
    assert torch.equal(changed_pixels(images, out), region)


def test_torch_cutout_allow_partial_with_a_square_larger_than_the_image() -> None:
    # side = round(sqrt(0.9 * 9 * 40)) = 18 > H = 9: clipped to the full height, never empty.
    params = sample(RandomCutout(patch_area=0.9, allow_partial=True, generator=gen(16)), (9, 40), n=300)
    assert (params["top"] == 0).all() and (params["height"] == 9).all()
    for left, w in zip(params["left"].tolist(), params["width"].tolist(), strict=True):
        assert len(centre_candidates(left, w, 18, 40)) == 1


@pytest.mark.parametrize("case", ["cutout"])
def test_torch_area_fractions_are_uniform_over_the_range(case) -> None:
    check_area_fractions_are_uniform_over_the_range(lambda g: RandomCutout(patch_area=(0.05, 0.4), generator=g),
                                                    0.05, 0.4)


@pytest.mark.parametrize(("make", "size"), [(lambda g: RandomCutout(patch_area=0.1, generator=g), (37, 53))])  # 14 px
def test_torch_boxes_are_placed_uniformly_inside(make, size) -> None:
    check_boxes_are_placed_uniformly_inside(make, size)


@pytest.mark.parametrize(("size", "area"), [((37, 53), 0.1), ((32, 32), 0.25)])
def test_torch_cutout_allow_partial_centres_are_uniform_over_the_image(size, area) -> None:
    # Would fail for centres restricted to where the square fits, or for a clipped-corner placement.
    height, width = size
    side = round(math.sqrt(area * height * width))
    params = sample(RandomCutout(patch_area=area, allow_partial=True, generator=gen(32)), size)
    for start, length, extent in (("top", "height", height), ("left", "width", width)):
        centres = []
        for s, n in zip(params[start].tolist(), params[length].tolist(), strict=True):
            candidates = centre_candidates(s, n, side, extent)
            assert len(candidates) == 1
            centres.append(candidates[0])
        observed = np.bincount(centres, minlength=extent)
        assert len(observed) == extent
        assert_frequencies(observed, np.full(extent, 1 / extent))


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size.
KERAS_SIZE = (13, 11)


def keras_images(batch: int = 16, dtype: str = "float32", size=KERAS_SIZE, channels: int = 3, seed: int = 0):
    return kh.to_tensor(kh.make_images((batch, *size, channels), dtype, seed=seed), dtype)


@pytest.mark.parametrize("allow_partial", [False, True])
@pytest.mark.parametrize("patch_area", [0.1, (0.05, 0.5)])
def test_keras_cutout_pixel_accounting(allow_partial, patch_area):
    x = keras_images(64)
    layer = KerasRandomCutout(patch_area=patch_area, allow_partial=allow_partial, seed=1)
    out, p = kh.run_with_params(layer, x)
    expected = kh.reference_box_mask(p["top"], p["left"], p["height"], p["width"], KERAS_SIZE)
    np.testing.assert_array_equal(kh.changed_pixels(kh.np_(x), out), expected)
    np.testing.assert_array_equal(out[expected[..., None].repeat(3, -1)], 0.0)
    lo, hi = (patch_area, patch_area) if isinstance(patch_area, float) else patch_area
    side_lo = max(1, round(np.sqrt(lo * KERAS_SIZE[0] * KERAS_SIZE[1])))
    side_hi = round(np.sqrt(hi * KERAS_SIZE[0] * KERAS_SIZE[1]))
    if not allow_partial:
        np.testing.assert_array_equal(p["height"], p["width"])
        assert (p["height"] >= side_lo).all() and (p["height"] <= min(side_hi, *KERAS_SIZE)).all()
        assert (p["top"] + p["height"] <= KERAS_SIZE[0]).all() and (p["left"] + p["width"] <= KERAS_SIZE[1]).all()
    else:
        assert (p["height"] <= side_hi).all() and (p["width"] <= side_hi).all()
        assert (p["top"] >= 0).all() and (p["top"] + p["height"] <= KERAS_SIZE[0]).all()


def test_keras_cutout_partial_clips_at_the_border():
    layer = KerasRandomCutout(patch_area=0.6, allow_partial=True, seed=3)
    p = {k: kh.np_(v) for k, v in layer.get_random_transformation(keras_images(256)).items()}
    side = round(np.sqrt(0.6 * KERAS_SIZE[0] * KERAS_SIZE[1]))
    assert (p["height"] < side).any() and (p["height"] * p["width"] < side * side).any()


# --------------------------------------------------------------------------------------------
# The options of the paper's code (from_paper; tests/papers/test_cutout_paper.py compares them
# with the official sampler).
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [RandomCutout, KerasRandomCutout], ids=["torch", "keras"])
def test_paper_options_are_validated_by_name(cls) -> None:
    with pytest.raises(ValueError, match=r"^RandomCutout: patch_side must be a positive integer or a pair "
                                         r"\(lo, hi\) of integers with 1 <= lo <= hi; got 0$"):
        cls(patch_side=0)
    with pytest.raises(TypeError, match=r"^RandomCutout: patch_side .*; got 2\.5$"):
        cls(patch_side=2.5)
    with pytest.raises(TypeError, match=r"^RandomCutout: symmetric_box must be a bool; got 1$"):
        cls(symmetric_box=1)
    with pytest.raises(ValueError, match=r"^RandomCutout: patch_count .*; got \(3, 1\)$"):
        cls(patch_count=(3, 1))
    built = cls(patch_side=[4, 6], patch_count=2)
    assert (built.patch_side, built.patch_count, built.symmetric_box) == ((4, 6), (2, 2), False)


def test_torch_symmetric_box_inside_the_image_has_the_even_side() -> None:
    """``symmetric_box`` with the square fully inside: an odd side ``L`` erases ``2 (L//2)``."""
    x = make_images((40, 1, 12, 12))
    out = RandomCutout(patch_side=(5, 7), symmetric_box=True, generator=gen(0))(x)
    changed = changed_pixels(x, out)
    rows, cols = changed.any(dim=2).sum(dim=1), changed.any(dim=1).sum(dim=1)
    assert set(rows.tolist()) == {4, 6} and torch.equal(rows, cols)
    assert torch.equal(changed.sum(dim=(1, 2)), rows * cols)
