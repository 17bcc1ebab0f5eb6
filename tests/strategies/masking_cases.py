"""Shared set-up of the torch masking tests of ``tests/strategies/`` (Cutout, Random Erasing,
Hide-and-Seek, GridMask and their fills): the configurations, the regions rebuilt from the
sampled parameters by the framework-free references (``tests/references.py``), distribution
limits, and the pixel-accounting checks each strategy's file runs on its own configurations.

Seeds are fixed, so the tests are deterministic; tolerances are set so that a correct
implementation would fail with probability at most ``ALPHA`` (KS / chi-square) or beyond five
standard errors, plus exact bounds for the rounding of sizes to whole pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import references
import torch
from helpers import assert_bit_identical, changed_pixels, gen, make_images, run_with_params
from scipy import stats
from torch import Tensor

from maskmix.torch import RandomCutout, RandomErasing, RandomGridMask, RandomHideAndSeek

#: False-alarm probability of the distribution tests.
ALPHA = 1e-4
#: Images per sampling test (parameters only: the images are an expanded zero tensor).
N = 4000
BIG = (480, 640)  # large images keep the pixel rounding of the sizes small


def ks_limit(n: int) -> float:
    """Largest one-sample KS statistic a correct sample of size ``n`` exceeds with probability ALPHA."""
    return float(stats.kstwo.ppf(1 - ALPHA, n))


def assert_frequencies(observed: np.ndarray, probabilities: np.ndarray) -> None:
    """Chi-square goodness of fit at level ALPHA; outcomes of probability 0 never occur."""
    observed, probabilities = np.asarray(observed, dtype=np.float64), np.asarray(probabilities, dtype=np.float64)
    support = probabilities > 0
    assert observed[~support].sum() == 0
    expected = probabilities[support] / probabilities[support].sum() * observed.sum()
    assert expected.min() >= 5  # the chi-square approximation holds
    if support.sum() > 1:
        assert stats.chisquare(observed[support], expected).pvalue > ALPHA


def sample(transform, size: tuple[int, int], n: int = N, channels: int = 1) -> dict:
    """``make_params`` on a cheap expanded batch of ``n`` images (only shapes matter)."""
    return transform.make_params([torch.zeros(1, 1, 1, 1).expand(n, channels, *size)])


def reference_region(params: dict, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """``(B, H, W)`` region rebuilt from any of the four strategies' params, and the ambiguous
    pixels (rotated GridMask coordinates within 1e-3 of an integer)."""
    if "rows" in params:
        region = torch.from_numpy(references.hide_and_seek_mask(params["rows"], params["cols"], params["hidden"], size))
        return region, torch.zeros_like(region)
    if "unit" in params:
        angle = params["angle"].to(torch.float64) if "angle" in params else None
        region, ambiguous = references.grid_mask(params["unit"], params["masked"], params["offset_y"],
                                                 params["offset_x"], size, angle)
        return torch.from_numpy(region), torch.from_numpy(ambiguous)
    region = torch.from_numpy(references.box_mask(params["top"], params["left"], params["height"], params["width"],
                                                  size, params.get("active")))
    return region, torch.zeros_like(region)


STRATEGIES = {
    "cutout": lambda **kw: RandomCutout(patch_area=(0.05, 0.4), **kw),
    "cutout_partial": lambda **kw: RandomCutout(patch_area=(0.1, 0.6), allow_partial=True, **kw),
    "erasing": lambda **kw: RandomErasing(**kw),
    "erasing_multi": lambda **kw: RandomErasing(patch_area=(0.1, 0.5), patch_count=(1, 4), **kw),
    "hide_and_seek": lambda **kw: RandomHideAndSeek(grid_size=[4, (2, 8), 8], erased_patches=(1, 6), **kw),
    "hide_and_seek_prob": lambda **kw: RandomHideAndSeek(grid_size=(4, 8), hide_prob=0.4, **kw),
    "grid_mask": lambda **kw: RandomGridMask(unit_length=(0.2, 0.6), masked_ratio=(0.3, 0.7), **kw),
    "grid_mask_rotated": lambda **kw: RandomGridMask(unit_length=(0.2, 0.5), rotation=360, **kw),
}
SHAPES = [(8, 3, 32, 48), (8, 3, 37, 53), (8, 1, 53, 37), (2, 3, 3, 16, 24), (3, 32, 48)]


def pixel_cases(*names: str) -> list:
    """``(name, shape, dtype)`` cases of the pixel-accounting test for the configurations ``names``."""
    cases = []
    for name in names:
        for shape in SHAPES:
            dtypes = (torch.float32, torch.uint8, torch.bfloat16, torch.float16, torch.float64)
            for dtype in dtypes if len(shape) == 4 else dtypes[:2]:
                cases.append(pytest.param(name, shape, dtype, id=f"{name}-{shape}-{dtype}"))
    return cases


def check_changed_pixels_are_exactly_the_region(name: str, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    """The pixels ``STRATEGIES[name]`` changes are exactly the reference region of the selected
    images, filled black; unselected images come back bit-identical; the input is not modified."""
    images = make_images(shape, dtype, seed=1)
    before = images.clone()
    transform = STRATEGIES[name](augmentation_ratio=0.5, generator=gen(2))
    out, params = run_with_params(transform, images)

    assert out.shape == images.shape and out.dtype == images.dtype
    assert_bit_identical(images, before)  # never modified in place
    region, ambiguous = reference_region(params, tuple(shape[-2:]))
    selected = params["selected"]
    batch = selected.shape[0]
    assert region.shape == (batch, *shape[-2:])
    if batch >= 4:
        assert 0 < int(selected.sum()) < batch  # both kinds of image are exercised
    assert region.flatten(1).any(1)[selected].all()  # every augmented image has a region

    expected = region & selected.view(-1, 1, 1)
    changed = changed_pixels(images.reshape(-1, *shape[-3:]), out.reshape(-1, *shape[-3:]))
    assert ambiguous.float().mean() < 0.01
    assert torch.equal(changed & ~ambiguous, expected & ~ambiguous)
    flat_in, flat_out = images.reshape(batch, *shape[-3:]), out.reshape(batch, *shape[-3:])
    assert_bit_identical(flat_out[~selected], flat_in[~selected])
    # Black fill: every channel of every region pixel is the range's low end, 0.
    assert (flat_out.permute(1, 0, 2, 3)[:, expected & ~ambiguous] == 0).all()


def check_values_outside_the_region_survive_bit_identical(name: str) -> None:
    """Out-of-range values, infinities, NaN and negative zero are not clipped or touched outside the region."""
    images = make_images((6, 3, 32, 48), seed=4)
    specials = torch.tensor([float("nan"), float("inf"), -float("inf"), 7.5, -3.25, -0.0])
    where = torch.rand(images.shape, generator=gen(5)) < 0.3
    images = torch.where(where, specials[torch.randint(0, 6, images.shape, generator=gen(6))], images)
    out, params = run_with_params(STRATEGIES[name](augmentation_ratio=0.5, generator=gen(7)), images)
    region, _ = reference_region(params, (32, 48))
    keep = ~(region & params["selected"].view(-1, 1, 1)).unsqueeze(1).expand_as(images)
    assert_bit_identical(out[keep], images[keep])
    assert (out[~keep] == 0).all()


def patch_sizes(params: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heights, widths and counts of the active patches (one per image for Cutout)."""
    h, w = params["height"], params["width"]
    if "active" not in params:
        return h.numpy(), w.numpy(), np.ones(h.shape[0])
    active = params["active"]
    count = params["count"].view(-1, 1).expand_as(h)
    return h[active].numpy(), w[active].numpy(), count[active].numpy().astype(np.float64)


def check_area_fractions_are_uniform_over_the_range(make, lo: float, hi: float) -> None:
    # Every configuration fits the 480x640 image, so no candidate is ever redrawn. The measured area
    # h * w / (H W) (times the count: the drawn area is split between the patches) differs from the
    # drawn fraction by at most (0.5 (h + w) + 0.75) / (H W) (each side is rounded by <= 0.5 px);
    # that shift moves the empirical CDF by at most slack / (hi - lo). A uniform side, or a range
    # off by 10%, gives D > 0.1, far above the ~0.045 allowed.
    h, w, count = patch_sizes(sample(make(gen(28)), BIG))
    pixels = BIG[0] * BIG[1]
    fraction = h * w / pixels * count
    slack = float(((0.5 * (h + w) + 0.75) / pixels * count).max())
    width = hi - lo
    assert stats.kstest(fraction, stats.uniform(lo, width).cdf).statistic <= ks_limit(fraction.size) + slack / width
    # The ends of the range are reached: P(min > lo + 0.005 (hi - lo)) = 0.995^n < 1e-8.
    assert lo - slack <= fraction.min() <= lo + 0.005 * width + slack
    assert hi - 0.005 * width - slack <= fraction.max() <= hi + slack


def check_boxes_are_placed_uniformly_inside(make, size: tuple[int, int]) -> None:
    # Would fail for a biased placement such as floor(U * (H - h)), which never reaches the last row.
    params = sample(make(gen(31)), size)
    for start, length, extent in (("top", "height", size[0]), ("left", "width", size[1])):
        sizes = params[length].flatten()
        assert (sizes == sizes[0]).all()
        positions = extent - int(sizes[0]) + 1
        observed = np.bincount(params[start].flatten().numpy(), minlength=positions)
        assert len(observed) == positions
        assert_frequencies(observed, np.full(positions, 1 / positions))
