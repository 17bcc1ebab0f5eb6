"""Random Erasing (``RandomErasing``), torch and Keras: the erased pixels are exactly the active
rectangles rebuilt by slicing from the sampled parameters (``tests/references.py``); areas are
uniform, aspect ratios log-uniform, counts uniform, placements uniform, sizes follow the
documented formula, candidates that do not fit are redrawn. The one-pixel lines of extreme aspect
ratios are checked for ``RandomCutBlur`` too, which draws its rectangle the same way. The fills
every masking strategy shares: ``test_fills.py``.
"""

from __future__ import annotations

import keras_helpers as kh  # first: loads Triton before TensorFlow (see there)

# isort: split

import math

import numpy as np
import pytest
import torch
from helpers import changed_pixels, gen, make_images
from masking_cases import (
    BIG,
    assert_frequencies,
    check_area_fractions_are_uniform_over_the_range,
    check_boxes_are_placed_uniformly_inside,
    check_changed_pixels_are_exactly_the_region,
    check_values_outside_the_region_survive_bit_identical,
    ks_limit,
    patch_sizes,
    pixel_cases,
    sample,
)
from scipy import stats

from maskmix.keras import RandomErasing as KerasRandomErasing
from maskmix.torch import RandomCutBlur, RandomErasing

# --------------------------------------------------------------------------------------------
# torch: pixel accounting.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shape", "dtype"), pixel_cases('erasing', 'erasing_multi'))
def test_torch_changed_pixels_are_exactly_the_region_from_params(name, shape, dtype) -> None:
    check_changed_pixels_are_exactly_the_region(name, shape, dtype)


@pytest.mark.parametrize("name", ['erasing_multi'])
def test_torch_values_outside_the_region_survive_bit_identical(name) -> None:
    check_values_outside_the_region_survive_bit_identical(name)


# --------------------------------------------------------------------------------------------
# torch: sampling statistics of the rectangles.
# --------------------------------------------------------------------------------------------


AREA_CASES = {
    "erasing": (lambda g: RandomErasing(patch_area=(0.05, 0.3), patch_aspect_ratio=(0.5, 2.0), generator=g),
                (0.05, 0.3)),
    "erasing_default_aspect": (lambda g: RandomErasing(patch_area=(0.02, 0.1), generator=g), (0.02, 0.1)),
    "erasing_count": (
        lambda g: RandomErasing(patch_area=(0.1, 0.4), patch_aspect_ratio=(0.5, 1.5), patch_count=(1, 3), generator=g),
        (0.1, 0.4),
    ),
}


@pytest.mark.parametrize("case", list(AREA_CASES))
def test_torch_area_fractions_are_uniform_over_the_range(case) -> None:
    make, (lo, hi) = AREA_CASES[case]
    check_area_fractions_are_uniform_over_the_range(make, lo, hi)


ASPECT_CASES = {
    "narrow": (lambda g: RandomErasing(patch_area=(0.05, 0.3), patch_aspect_ratio=(0.5, 2.0), generator=g), (0.5, 2.0)),
    "default": (lambda g: RandomErasing(patch_area=(0.02, 0.1), generator=g), (0.3, 3.0)),
    "asymmetric": (lambda g: RandomErasing(patch_area=(0.02, 0.05), patch_aspect_ratio=(1.5, 4.0), generator=g),
                   (1.5, 4.0)),
    "count": (
        lambda g: RandomErasing(patch_area=(0.1, 0.4), patch_aspect_ratio=(0.5, 1.5), patch_count=(1, 3), generator=g),
        (0.5, 1.5),
    ),
}


@pytest.mark.parametrize("case", list(ASPECT_CASES))
def test_torch_aspect_ratios_are_log_uniform(case) -> None:
    # KS on log(h / w) against U(log lo, log hi). Rounding each side moves log(h / w) by at most
    # log(h / (h - 0.5)) + log(w / (w - 0.5)). A uniform (not log-uniform) aspect gives D ~ 0.2 on (0.3, 3).
    make, (lo, hi) = ASPECT_CASES[case]
    h, w, _ = patch_sizes(sample(make(gen(29)), BIG))
    log_ratio = np.log(h / w)
    slack = float((np.log(h / (h - 0.5)) + np.log(w / (w - 0.5))).max())
    width = math.log(hi) - math.log(lo)
    limit = ks_limit(log_ratio.size) + slack / width
    assert stats.kstest(log_ratio, stats.uniform(math.log(lo), width).cdf).statistic <= limit
    assert math.log(lo) - slack <= log_ratio.min() <= math.log(lo) + 0.005 * width + slack
    assert math.log(hi) - 0.005 * width - slack <= log_ratio.max() <= math.log(hi) + slack


@pytest.mark.parametrize("counts", [(1, 4), (2, 3), (1, 2)])
def test_torch_erasing_patch_count_is_uniform(counts) -> None:
    params = sample(RandomErasing(patch_count=counts, generator=gen(30)), (64, 64))
    count = params["count"]
    assert torch.equal(params["active"].sum(1), count)
    lo, hi = counts
    observed = np.bincount(count.numpy(), minlength=hi + 1)
    assert len(observed) == hi + 1
    assert_frequencies(observed, np.array([0.0] * lo + [1.0] * (hi - lo + 1)))


@pytest.mark.parametrize(
    ("make", "size"),
    [
        (lambda g: RandomErasing(patch_area=0.2, patch_aspect_ratio=0.5, generator=g), (37, 53)),  # 14 x 28
        (lambda g: RandomErasing(patch_area=0.2, patch_aspect_ratio=0.5, generator=g), (53, 37)),
    ],
)
def test_torch_boxes_are_placed_uniformly_inside(make, size) -> None:
    check_boxes_are_placed_uniformly_inside(make, size)


# --------------------------------------------------------------------------------------------
# torch: geometry.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "area", "aspect", "count"),
    [
        ((37, 53), 0.2, 0.5, 1),
        ((37, 53), 0.2, 0.5, 3),
        ((64, 64), 0.3, 2.0, 2),
        ((53, 37), 0.05, 1.0, 1),
        ((37, 53), 0.9, 4.0, 1),  # 84 px high: never fits, clamped to H
        ((37, 53), 0.9, 0.1, 1),  # 133 px wide: clamped to W
        ((1, 1), 0.5, 3.0, 2),
    ],
)
def test_torch_erasing_rectangle_sizes_follow_the_formula(size, area, aspect, count) -> None:
    height, width = size
    exact_h = math.sqrt(area * height * width * aspect / count)
    exact_w = math.sqrt(area * height * width / (aspect * count))
    # The chosen cases are far from rounding ties, so float32 arithmetic cannot flip them.
    assert all(abs(v - math.floor(v) - 0.5) > 0.01 for v in (exact_h, exact_w))
    expected_h = min(max(round(exact_h), 1), height)
    expected_w = min(max(round(exact_w), 1), width)
    params = sample(
        RandomErasing(patch_area=area, patch_aspect_ratio=aspect, patch_count=count, generator=gen(17)), size, n=300
    )
    assert params["height"].shape == (300, count)
    assert (params["height"] == expected_h).all() and (params["width"] == expected_w).all()
    assert params["active"].all() and (params["count"] == count).all()
    assert (params["top"] >= 0).all() and (params["top"] + expected_h <= height).all()
    assert (params["left"] >= 0).all() and (params["left"] + expected_w <= width).all()


@pytest.mark.parametrize(("aspect", "line"), [(1e40, "column"), (1e-40, "row"), ((1e-40, 1e-35), "row")])
@pytest.mark.parametrize("cls", [RandomErasing, RandomCutBlur])
def test_torch_extreme_aspect_ratios_give_one_pixel_lines(cls, aspect, line: str) -> None:
    """Aspect ratios beyond float32 are valid (> 0): the rectangle degenerates to a full-length line
    one pixel wide, instead of overflowing on the way to integer sizes."""
    x = make_images((16, 3, 12, 10))
    out = cls(patch_aspect_ratio=aspect, patch_area=0.3)(x)
    changed = changed_pixels(x, out)
    rows, cols = changed.any(2).sum(1), changed.any(1).sum(1)
    if line == "column":
        assert (cols <= 1).all() and (rows >= 11).sum() >= 14  # a pixel may keep its value by chance
    else:
        assert (rows <= 1).all() and (cols >= 9).sum() >= 14


@pytest.mark.parametrize("size", [(37, 53), (96, 128), (20, 20)])
def test_torch_erasing_boxes_always_lie_inside(size) -> None:
    # Default ranges: large patches often do not fit and are redrawn (or clamped).
    transform = RandomErasing(patch_area=(0.1, 0.9), patch_count=(1, 3), generator=gen(18))
    params = sample(transform, size, n=2000)
    height, width = size
    top, left, h, w = params["top"], params["left"], params["height"], params["width"]
    assert (h >= 1).all() and (w >= 1).all()
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= height).all() and (left + w <= width).all()
    count = params["count"]
    assert ((count >= 1) & (count <= 3)).all()
    assert torch.equal(params["active"], torch.arange(3) < count.unsqueeze(1))


@pytest.mark.parametrize("size", [(40, 40), (40, 90), (90, 40)])
def test_torch_erasing_keeps_the_first_candidate_that_fits(size) -> None:
    # 800 px patches with aspect in (0.25, 4): a candidate fits only if both its sides do, so about
    # half the candidates are rejected (too tall or too wide) and all 10 fail for <= 0.1% of the
    # images. A kept candidate keeps its area (up to rounding); only a clamped one loses area. A
    # check of one side only, or keeping the first candidate, clamps a third of the patches or more.
    height, width = size
    transform = RandomErasing(patch_area=800 / (height * width), patch_aspect_ratio=(0.25, 4.0), generator=gen(37))
    params = sample(transform, size, n=2000)
    h, w = params["height"].flatten().double(), params["width"].flatten().double()
    assert (h <= height).all() and (w <= width).all()
    lost = (800 - h * w) > 0.5 * (h + w) + 0.75
    assert lost.double().mean() < 0.01


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size.
KERAS_SIZE = (13, 11)


def keras_images(batch: int = 16, dtype: str = "float32", size=KERAS_SIZE, channels: int = 3, seed: int = 0):
    return kh.to_tensor(kh.make_images((batch, *size, channels), dtype, seed=seed), dtype)


@pytest.mark.parametrize("patch_count", [1, (1, 4)])
def test_keras_erasing_pixel_accounting(patch_count):
    x = keras_images(64)
    layer = KerasRandomErasing(patch_count=patch_count, seed=2)
    out, p = kh.run_with_params(layer, x)
    expected = kh.reference_box_mask(p["top"], p["left"], p["height"], p["width"], KERAS_SIZE, active=p["active"])
    np.testing.assert_array_equal(kh.changed_pixels(kh.np_(x), out), expected)
    assert (p["top"] + p["height"] <= KERAS_SIZE[0]).all() and (p["left"] + p["width"] <= KERAS_SIZE[1]).all()
    lo, hi = (patch_count, patch_count) if isinstance(patch_count, int) else patch_count
    assert p["active"].shape == (64, hi)
    np.testing.assert_array_equal(p["active"].sum(1), p["count"])
    assert p["count"].min() >= lo and p["count"].max() <= hi
    if hi > lo:
        assert len(set(p["count"].tolist())) > 1


def test_keras_erasing_area_split_between_patches():
    """Each of n patches gets area a / n (timm): total area ~ the configured range."""
    layer = KerasRandomErasing(patch_area=0.2, patch_aspect_ratio=1.0, patch_count=(1, 4), seed=5)
    p = {k: kh.np_(v) for k, v in layer.get_random_transformation(keras_images(200, size=(64, 64))).items()}
    side = np.sqrt(0.2 * 64 * 64 / p["count"])
    first = p["height"][:, 0]
    assert np.all(np.abs(first - side) <= 1.0)


@pytest.mark.parametrize(("aspect", "line"), [(1e40, "column"), (1e-40, "row")])
def test_keras_extreme_aspect_ratios_give_one_pixel_lines(aspect: float, line: str) -> None:
    """Aspect ratios beyond float32 are valid (> 0): a full-length line one pixel wide, no overflow."""
    x = keras_images(16, size=(12, 10))
    out = np.asarray(KerasRandomErasing(patch_aspect_ratio=aspect, patch_area=0.3, seed=1)(x))
    changed = (out != np.asarray(x)).any(-1)
    rows, cols = changed.any(2).sum(1), changed.any(1).sum(1)
    if line == "column":
        assert (cols == 1).all() and (rows >= 11).sum() >= 14  # a pixel may keep its value by chance
    else:
        assert (rows == 1).all() and (cols >= 9).sum() >= 14


# --------------------------------------------------------------------------------------------
# The options of the paper's code (from_paper; tests/papers/test_erasing_paper.py compares them
# with the official sampler).
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [RandomErasing, KerasRandomErasing], ids=["torch", "keras"])
def test_paper_options_are_validated_by_name(cls) -> None:
    with pytest.raises(ValueError, match=r"^RandomErasing: aspect_law must be one of 'log_uniform', 'uniform'; "
                                         r"got 'normal'$"):
        cls(aspect_law="normal")
    with pytest.raises(ValueError, match=r"^RandomErasing: fit must be one of 'clamp', 'skip'; got 'crop'$"):
        cls(fit="crop")
    with pytest.raises(ValueError, match=r"^RandomErasing: attempts must be an integer >= 1; got 0$"):
        cls(attempts=0)
    with pytest.raises(TypeError, match=r"^RandomErasing: attempts must be an integer >= 1; got 2\.0$"):
        cls(attempts=2.0)
    built = cls(aspect_law="UNIFORM", fit="skip", attempts=100)
    assert (built.aspect_law, built.fit, built.attempts) == ("uniform", "skip", 100)


def test_torch_skip_never_erases_a_full_side_and_clamp_does() -> None:
    """Tall thin candidates: 'clamp' keeps full-height rectangles, 'skip' needs h < H strictly."""
    x = make_images((200, 1, 10, 10))
    options = {"patch_area": (0.3, 0.5), "patch_aspect_ratio": (3.0, 6.0), "aspect_law": "uniform"}
    skipped = changed_pixels(x, RandomErasing(fit="skip", generator=gen(0), **options)(x))
    clamped = changed_pixels(x, RandomErasing(fit="clamp", generator=gen(0), **options)(x))
    assert skipped.any(dim=2).sum(dim=1).max() < 10 and not skipped.all(dim=1).any()
    assert clamped.any(dim=2).sum(dim=1).max() == 10
