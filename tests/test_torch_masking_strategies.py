"""Per-strategy properties of the four torch masking transforms (SPEC §3 fills, §4 strategies).

Pixel accounting: the pixels a transform changes are exactly the region rebuilt independently from
the sampled parameters (Python slicing and loops, or NumPy with the documented formulas, never the
library's own mask builders), they hold exactly the configured fill, and unselected images and
every pixel outside the region come back bit-identical.

Sampling statistics: every random quantity follows its documented distribution. Seeds are fixed, so
the tests are deterministic; tolerances are set so that a correct implementation would fail with
probability at most ``ALPHA`` (KS / chi-square) or beyond five standard errors, plus exact bounds
for the rounding of sizes to whole pixels. Each test names (in a comment) a plausible wrong
implementation it rejects.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import changed_pixels, make_images, reference_box_mask, run_with_params
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torch import Tensor

from maskmix.torch import RandomCutBlur, RandomCutout, RandomErasing, RandomGridMask, RandomHideAndSeek

#: False-alarm probability of the distribution tests.
ALPHA = 1e-4
#: Images per sampling test (parameters only: the images are an expanded zero tensor).
N = 4000


# --------------------------------------------------------------------------------------------
# Helpers: independent reference regions, bit-exact comparisons, distribution limits.
# --------------------------------------------------------------------------------------------


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_bit_identical(a: Tensor, b: Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def ks_limit(n: int) -> float:
    """Largest one-sample KS statistic a correct sample of size ``n`` exceeds with probability ALPHA."""
    return float(stats.kstwo.ppf(1 - ALPHA, n))


def hide_and_seek_reference(params: dict, size: tuple[int, int]) -> Tensor:
    """Hidden cells painted with the documented boundaries floor(i * H / rows), in a Python loop."""
    height, width = size
    rows, cols, hidden = params["rows"].tolist(), params["cols"].tolist(), params["hidden"].tolist()
    mask = torch.zeros((len(rows), height, width), dtype=torch.bool)
    for b, (r, c) in enumerate(zip(rows, cols, strict=True)):
        for i, row in enumerate(hidden[b]):
            for j, is_hidden in enumerate(row):
                if is_hidden:
                    assert i < r and j < c, "a cell outside the image's own grid is hidden"
                    top, bottom = math.floor(i * height / r), math.floor((i + 1) * height / r)
                    left, right = math.floor(j * width / c), math.floor((j + 1) * width / c)
                    mask[b, top:bottom, left:right] = True
    return mask


def grid_mask_reference(params: dict, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """GridMask region from the documented modulo formula (NumPy, float64 when rotated).

    Returns the region and the pixels whose rotated coordinates lie within 1e-3 of an integer
    (where the library's float32 floor may legitimately differ).
    """
    height, width = size
    d = params["unit"].numpy()[:, None, None]
    m = params["masked"].numpy()[:, None, None]
    oy = params["offset_y"].numpy()[:, None, None]
    ox = params["offset_x"].numpy()[:, None, None]
    ys = np.arange(height)[None, :, None]
    xs = np.arange(width)[None, None, :]
    if "angle" not in params:
        region = ((ys + oy) % d < m) & ((xs + ox) % d < m)
        return torch.from_numpy(region), torch.zeros(region.shape, dtype=torch.bool)
    t = params["angle"].to(torch.float64).numpy()[:, None, None]
    yc, xc = ys - (height - 1) / 2, xs - (width - 1) / 2
    u = np.cos(t) * xc + np.sin(t) * yc
    v = np.cos(t) * yc - np.sin(t) * xc

    def near_integer(a: np.ndarray) -> np.ndarray:
        return np.abs(a - np.round(a)) < 1e-3

    region = ((np.floor(v).astype(np.int64) + oy) % d < m) & ((np.floor(u).astype(np.int64) + ox) % d < m)
    return torch.from_numpy(region), torch.from_numpy(near_integer(u) | near_integer(v))


def reference_region(params: dict, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """``(B, H, W)`` region rebuilt from any of the four strategies' params, and the ambiguous pixels."""
    if "rows" in params:
        region = hide_and_seek_reference(params, size)
        return region, torch.zeros_like(region)
    if "unit" in params:
        return grid_mask_reference(params, size)
    region = reference_box_mask(
        params["top"], params["left"], params["height"], params["width"], size, params.get("active")
    )
    return region, torch.zeros_like(region)


def sample(transform, size: tuple[int, int], n: int = N, channels: int = 1) -> dict:
    """``make_params`` on a cheap expanded batch of ``n`` images (only shapes matter)."""
    return transform.make_params([torch.zeros(1, 1, 1, 1).expand(n, channels, *size)])


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


def pixel_cases() -> list:
    cases = []
    for name in STRATEGIES:
        for shape in SHAPES:
            dtypes = (torch.float32, torch.uint8, torch.bfloat16, torch.float16, torch.float64)
            for dtype in dtypes if len(shape) == 4 else dtypes[:2]:
                cases.append(pytest.param(name, shape, dtype, id=f"{name}-{shape}-{dtype}"))
    return cases


# --------------------------------------------------------------------------------------------
# Pixel accounting.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shape", "dtype"), pixel_cases())
def test_changed_pixels_are_exactly_the_region_from_params(name, shape, dtype) -> None:
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


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_pixel_accounting_on_arbitrary_shapes(data) -> None:
    kind = data.draw(st.sampled_from(["cutout", "cutout_partial", "erasing", "hide_and_seek", "grid_mask"]))
    batch, channels = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    height, width = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40))
    if kind == "hide_and_seek":  # grids finer than the image included: some cells are then empty
        rows, cols = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
        transform = RandomHideAndSeek(grid_size=(rows, cols), erased_patches=(0, 20), generator=gen(3))
    else:
        transform = {
            "cutout": lambda: RandomCutout(patch_area=(0.01, 0.99), generator=gen(3)),
            "cutout_partial": lambda: RandomCutout(patch_area=(0.01, 0.99), allow_partial=True, generator=gen(3)),
            "erasing": lambda: RandomErasing(patch_area=(0.01, 0.9), patch_count=(1, 3), generator=gen(3)),
            "grid_mask": lambda: RandomGridMask(unit_length=(0.05, 1.0), masked_ratio=(0.01, 0.99), generator=gen(3)),
        }[kind]()
    images = make_images((batch, channels, height, width), seed=data.draw(st.integers(0, 100)))
    out, params = run_with_params(transform, images)
    region, _ = reference_region(params, (height, width))
    assert torch.equal(changed_pixels(images, out), region)
    if "top" in params:  # boxes lie inside the image
        assert (params["top"] >= 0).all() and (params["left"] >= 0).all()
        assert (params["top"] + params["height"] <= height).all()
        assert (params["left"] + params["width"] <= width).all()


@pytest.mark.parametrize("name", ["cutout", "cutout_partial", "erasing_multi", "hide_and_seek", "grid_mask"])
def test_values_outside_the_region_survive_bit_identical(name) -> None:
    # Out-of-range values, infinities, NaN and negative zero are not clipped or touched outside the region.
    images = make_images((6, 3, 32, 48), seed=4)
    specials = torch.tensor([float("nan"), float("inf"), -float("inf"), 7.5, -3.25, -0.0])
    where = torch.rand(images.shape, generator=gen(5)) < 0.3
    images = torch.where(where, specials[torch.randint(0, 6, images.shape, generator=gen(6))], images)
    out, params = run_with_params(STRATEGIES[name](augmentation_ratio=0.5, generator=gen(7)), images)
    region, _ = reference_region(params, (32, 48))
    keep = ~(region & params["selected"].view(-1, 1, 1)).unsqueeze(1).expand_as(images)
    assert_bit_identical(out[keep], images[keep])
    assert (out[~keep] == 0).all()


# --------------------------------------------------------------------------------------------
# Fill values.
# --------------------------------------------------------------------------------------------

#: ``"custom"`` stands for a pixels_range that keeps the fills away from the images' values.
CUSTOM_RANGE = {"float": (-1.5, 3.5), "uint8": (3.0, 250.0)}
CONSTANT_FILLS = [
    ("black", None),
    ("gray", None),
    ("white", None),
    ("black", "custom"),
    ("gray", "custom"),
    ("white", "custom"),
    ("zero", None),
    (-0.75, None),
    (300.0, None),
    ((-0.5, 1.25, 2.0), None),
    ((2.5,), None),
]
RANDOM_FILLS = [
    ("mean_per_channel", None),
    ("random", None),
    ("random", "custom"),
    ("noise", None),
    ("noise", "custom"),
    ("normal", None),
    ("normal_per_patch", None),
]
FILL_STRATEGIES = ["cutout", "erasing_multi", "hide_and_seek", "grid_mask"]
FILL_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.uint8]


def resolve_range(pixels_range, dtype: torch.dtype) -> tuple[tuple[float, float] | None, tuple[float, float]]:
    """The pixels_range argument and the (lo, hi) range it means for ``dtype``."""
    kind = "uint8" if dtype == torch.uint8 else "float"
    given_range = CUSTOM_RANGE[kind] if pixels_range == "custom" else None
    natural = (0.0, 255.0) if dtype == torch.uint8 else (0.0, 1.0)
    return given_range, given_range or natural


def as_image_value(value: float, dtype: torch.dtype) -> float:
    """A constant as stored in an image of ``dtype``: uint8 rounded (half to even) and saturated."""
    if dtype == torch.uint8:
        return float(min(max(round(value), 0), 255))
    return torch.tensor(value, dtype=torch.float64).to(dtype).item()


def run_fill(name: str, fill, pixels_range, dtype: torch.dtype):
    given_range, (lo, hi) = resolve_range(pixels_range, dtype)
    images = make_images((6, 3, 32, 48), dtype, seed=8)
    transform = STRATEGIES[name](fill_method=fill, pixels_range=given_range, augmentation_ratio=0.5, generator=gen(9))
    out, params = run_with_params(transform, images)
    region, _ = reference_region(params, (32, 48))
    selected = params["selected"]
    mask = region & selected.view(-1, 1, 1)
    assert_bit_identical(out[~selected], images[~selected])
    return images, out, params, mask, (lo, hi)


@pytest.mark.parametrize("dtype", FILL_DTYPES, ids=str)
@pytest.mark.parametrize(("fill", "pixels_range"), CONSTANT_FILLS, ids=repr)
@pytest.mark.parametrize("name", FILL_STRATEGIES)
def test_constant_fills_write_exactly_their_value(name, fill, pixels_range, dtype) -> None:
    images, out, _, mask, (lo, hi) = run_fill(name, fill, pixels_range, dtype)
    if isinstance(fill, str):
        per_channel = [{"black": lo, "white": hi, "gray": (lo + hi) / 2, "zero": 0.0}[fill]] * 3
    elif isinstance(fill, tuple):
        per_channel = list(fill) * (3 // len(fill))
    else:
        per_channel = [fill] * 3
    values = [as_image_value(v, dtype) for v in per_channel]
    fill_image = torch.tensor(values, dtype=torch.float64).to(dtype).view(1, 3, 1, 1)
    # The constants lie outside the images' values, so the changed pixels are exactly the region...
    assert torch.equal(changed_pixels(images, out), mask)
    # ...and the whole output is exactly "fill inside the region, input outside".
    assert_bit_identical(out, torch.where(mask.unsqueeze(1), fill_image.expand_as(images), images))


@pytest.mark.parametrize("dtype", FILL_DTYPES, ids=str)
@pytest.mark.parametrize(("fill", "pixels_range"), RANDOM_FILLS, ids=repr)
@pytest.mark.parametrize("name", FILL_STRATEGIES)
def test_data_dependent_and_random_fills(name, fill, pixels_range, dtype) -> None:
    images, out, params, mask, (lo, hi) = run_fill(name, fill, pixels_range, dtype)
    changed = changed_pixels(images, out)
    assert not (changed & ~mask).any()  # nothing outside the region changes
    assert_bit_identical(out[~mask.unsqueeze(1).expand_as(images)], images[~mask.unsqueeze(1).expand_as(images)])
    inside = [out[b][:, mask[b]] for b in range(out.shape[0])]  # (C, n) erased values per image
    augmented = [b for b in range(out.shape[0]) if mask[b].any()]
    assert len(augmented) == 3
    if dtype == torch.float32 or fill == "mean_per_channel":
        # No coincidences with the image's own values are possible at this precision / for the mean.
        assert torch.equal(changed, mask)

    if fill in ("mean_per_channel", "random", "normal_per_patch"):
        # One value per image and channel, constant over the whole region.
        colours = torch.stack([inside[b][:, :1] for b in augmented]).to(torch.float64).squeeze(-1)  # (n, C)
        for b in augmented:
            assert (inside[b] == inside[b][:, :1]).all()
        if fill == "mean_per_channel":
            means = images.to(torch.float64).mean(dim=(-2, -1))[augmented]
            tolerance = 0.5 if dtype == torch.uint8 else 2 * torch.finfo(dtype).eps * means.abs().max().item()
            assert (colours - means).abs().max() <= tolerance + 1e-12
        elif not (dtype == torch.uint8 and fill == "normal_per_patch"):  # N(0, 1) rounds to 0, 1, 2 in uint8
            assert len({tuple(c) for c in colours.tolist()}) == len(augmented)  # a colour per image
            assert len({c for row in colours.tolist() for c in row}) > 1  # channels differ
    else:
        # Per-pixel values: many distinct values inside every augmented image.
        for b in augmented:
            distinct = torch.unique(inside[b]).numel()
            # uint8 `normal` noise rounds N(0, 1) into {0, 1, 2, ...}: only a few values exist.
            floor = 3 if (dtype == torch.uint8 and fill == "normal") else 8 if dtype == torch.uint8 else 100
            assert distinct >= min(inside[b].numel() // 2, floor)
    if fill in ("random", "noise"):
        values = torch.cat([inside[b].flatten() for b in augmented]).to(torch.float64)
        low, high = (as_image_value(lo, dtype), as_image_value(hi, dtype))
        assert low <= values.min() and values.max() <= high
    if fill != "mean_per_channel":
        # The written values are the sampled ones cast to the image dtype (uint8 rounded, saturated).
        drawn = params["fill_values"]
        cast = drawn.round().clamp(0, 255).to(dtype) if dtype == torch.uint8 else drawn.to(dtype)
        expected = torch.where(mask.unsqueeze(1), cast.expand_as(images), images)
        assert_bit_identical(out, expected)


def test_per_channel_fill_of_wrong_length_is_rejected_at_call_time() -> None:
    transform = RandomCutout(fill_method=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match=r"RandomCutout: fill_method has 3 values but the images have 2"):
        transform(make_images((2, 2, 8, 8)))
    out = RandomCutout(fill_method=(0.05,))(make_images((2, 5, 8, 8)))  # one value serves every channel
    assert out.shape == (2, 5, 8, 8)


@pytest.mark.parametrize(
    ("fill", "distribution", "shape"),
    [
        ("random", stats.uniform(-1.5, 5.0), (N, 3, 1, 1)),
        ("noise", stats.uniform(-1.5, 5.0), (100, 3, 12, 16)),
        ("normal", stats.norm(), (100, 3, 12, 16)),
        ("normal_per_patch", stats.norm(), (N, 3, 1, 1)),
    ],
)
def test_random_fill_distributions(fill, distribution, shape) -> None:
    # Would fail for a range ignoring pixels_range, (0, 1) noise for `normal`, or a colour shared by images.
    transform = RandomCutout(fill_method=fill, pixels_range=(-1.5, 3.5), generator=gen(10))
    drawn = sample(transform, (12, 16), n=shape[0], channels=3)["fill_values"]
    assert drawn.shape == shape
    values = drawn.flatten().numpy().astype(np.float64)
    assert stats.kstest(values, distribution.cdf).statistic <= ks_limit(values.size)
    # Images and channels are independent draws: correlation across images and channels is small.
    per_image = drawn.flatten(2).mean(2).numpy()
    corr = np.corrcoef(per_image.T)
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < 5 / math.sqrt(shape[0])


@pytest.mark.parametrize("fill", ["random", "noise"])
def test_uint8_random_fills_are_uniform_over_every_level(fill: str) -> None:
    """uint8 fills are rounded: every level of 0..255 must be equally likely, the two end levels
    too (uniform over [0, 255] then rounded would give them half the share of the others)."""
    transform = RandomCutout(fill_method=fill, generator=gen(11))
    images = torch.zeros(1, 1, 1, 1, dtype=torch.uint8).expand(4000 if fill == "random" else 40, 3, 32, 32)
    drawn = transform.fill_for(images, transform.make_params([images]))
    counts = torch.bincount(drawn.flatten().long(), minlength=256).numpy()
    assert counts.size == 256 and counts.sum() >= 12000
    assert stats.chisquare(counts).pvalue > ALPHA
    ends, inner = counts[[0, 255]].mean(), counts[1:255].mean()
    assert ends > 0.75 * inner


# --------------------------------------------------------------------------------------------
# Geometry: sizes follow the documented formulas, boxes lie inside.
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
def test_cutout_square_side_and_inside(size, area, side) -> None:
    params = sample(RandomCutout(patch_area=area, generator=gen(11)), size, n=2000)
    height, width = size
    assert (params["height"] == side).all() and (params["width"] == side).all()
    top, left = params["top"], params["left"]
    assert (top >= 0).all() and (top <= height - side).all()
    assert (left >= 0).all() and (left <= width - side).all()
    if height > side:
        assert top.unique().numel() == height - side + 1  # every position is used


def test_cutout_range_sides_are_rounded_square_roots() -> None:
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
def test_cutout_allow_partial_clips_a_square_centred_on_a_pixel(size, area, side) -> None:
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


def test_cutout_allow_partial_with_a_square_larger_than_the_image() -> None:
    # side = round(sqrt(0.9 * 9 * 40)) = 18 > H = 9: clipped to the full height, never empty.
    params = sample(RandomCutout(patch_area=0.9, allow_partial=True, generator=gen(16)), (9, 40), n=300)
    assert (params["top"] == 0).all() and (params["height"] == 9).all()
    for left, w in zip(params["left"].tolist(), params["width"].tolist(), strict=True):
        assert len(centre_candidates(left, w, 18, 40)) == 1


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
def test_erasing_rectangle_sizes_follow_the_formula(size, area, aspect, count) -> None:
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
def test_extreme_aspect_ratios_give_one_pixel_lines(cls, aspect, line: str) -> None:
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
def test_erasing_boxes_always_lie_inside(size) -> None:
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
def test_erasing_keeps_the_first_candidate_that_fits(size) -> None:
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
def test_grid_mask_unit_and_masked_sizes(size, unit_length, masked_ratio, unit, masked) -> None:
    transform = RandomGridMask(unit_length=unit_length, masked_ratio=masked_ratio, generator=gen(19))
    params = sample(transform, size, n=1000)
    assert (params["unit"] == unit).all() and (params["masked"] == masked).all()
    for key in ("offset_y", "offset_x"):
        assert params[key].min() == 0 and params[key].max() == unit - 1
    assert "angle" not in params


def test_grid_mask_rotation_keeps_the_masked_fraction() -> None:
    # A rotated grid of 40 px units with 20 px squares still masks about a quarter of the image.
    images = make_images((32, 1, 160, 160), seed=20)
    out, params = run_with_params(
        RandomGridMask(unit_length=0.25, masked_ratio=0.5, rotation=360, generator=gen(21)), images
    )
    assert (params["angle"].abs() <= math.radians(360) + 1e-6).all()
    fraction = changed_pixels(images, out).float().mean().item()
    assert abs(fraction - 0.25) < 0.02


# --------------------------------------------------------------------------------------------
# Hide-and-Seek cells.
# --------------------------------------------------------------------------------------------


def single_cell_regions(size: tuple[int, int], rows: int, cols: int) -> dict[tuple[int, int], Tensor]:
    """The pixels of each cell, observed by hiding that one cell through ``transform``."""
    transform = RandomHideAndSeek(grid_size=(rows, cols), erased_patches=1, generator=gen(22))
    images = make_images((1, 1, *size), seed=23)
    params = transform.make_params([images])
    regions = {}
    for i in range(rows):
        for j in range(cols):
            hidden = torch.zeros_like(params["hidden"])
            hidden[0, i, j] = True
            out = transform.transform(images, {**params, "hidden": hidden})
            regions[i, j] = changed_pixels(images, out)[0]
    return regions


@pytest.mark.parametrize(
    ("size", "rows", "cols"), [((37, 53), 8, 8), ((53, 37), 3, 5), ((5, 7), 8, 8), ((32, 48), 4, 8)]
)
def test_hide_and_seek_cells_tile_the_image(size, rows, cols) -> None:
    # Implementation-independent: cells are rectangles in a grid that partition the image, and cell
    # heights / widths differ by at most one pixel.
    regions = single_cell_regions(size, rows, cols)
    total = torch.zeros(size, dtype=torch.int64)
    heights, widths = set(), set()
    row_spans: dict[int, set] = {i: set() for i in range(rows)}
    col_spans: dict[int, set] = {j: set() for j in range(cols)}
    for (i, j), region in regions.items():
        total += region
        ys, xs = region.any(1).nonzero().flatten(), region.any(0).nonzero().flatten()
        heights.add(ys.numel())
        widths.add(xs.numel())
        if ys.numel() and xs.numel():
            assert region.sum() == ys.numel() * xs.numel()  # a full rectangle
            assert torch.equal(ys, torch.arange(ys[0], ys[-1] + 1))
            assert torch.equal(xs, torch.arange(xs[0], xs[-1] + 1))
            row_spans[i].add(tuple(ys.tolist()))
            col_spans[j].add(tuple(xs.tolist()))
    # The non-empty cells of a grid row share their pixel rows, and likewise for grid columns.
    assert all(len(spans) <= 1 for spans in (*row_spans.values(), *col_spans.values()))
    assert (total == 1).all()
    assert heights <= {size[0] // rows, -(-size[0] // rows)}
    assert widths <= {size[1] // cols, -(-size[1] // cols)}


@pytest.mark.parametrize(
    ("size", "rows", "cols"), [((37, 53), 8, 8), ((53, 37), 3, 5), ((5, 7), 8, 8), ((32, 48), 4, 8), ((1, 1), 3, 2)]
)
def test_hide_and_seek_cells_follow_the_documented_floor_boundaries(size, rows, cols) -> None:
    height, width = size
    for (i, j), region in single_cell_regions(size, rows, cols).items():
        expected = torch.zeros(size, dtype=torch.bool)
        top, bottom = math.floor(i * height / rows), math.floor((i + 1) * height / rows)
        left, right = math.floor(j * width / cols), math.floor((j + 1) * width / cols)
        expected[top:bottom, left:right] = True
        assert torch.equal(region, expected), (i, j)


def valid_cells(params: dict) -> Tensor:
    lattice = params["hidden"].shape[1:]
    return (torch.arange(lattice[0]).view(1, -1, 1) < params["rows"].view(-1, 1, 1)) & (
        torch.arange(lattice[1]).view(1, 1, -1) < params["cols"].view(-1, 1, 1)
    )


def assert_frequencies(observed: np.ndarray, probabilities: np.ndarray) -> None:
    """Chi-square goodness of fit at level ALPHA; outcomes of probability 0 never occur."""
    observed, probabilities = np.asarray(observed, dtype=np.float64), np.asarray(probabilities, dtype=np.float64)
    support = probabilities > 0
    assert observed[~support].sum() == 0
    expected = probabilities[support] / probabilities[support].sum() * observed.sum()
    assert expected.min() >= 5  # the chi-square approximation holds
    if support.sum() > 1:
        assert stats.chisquare(observed[support], expected).pvalue > ALPHA


@pytest.mark.parametrize(
    ("grid_size", "erased", "probabilities"),
    [
        ((8, 8), (0, 5), [1 / 6] * 6),  # the default: 0..5 cells
        ((2, 3), (2, 9), [0, 0, 1 / 8, 1 / 8, 1 / 8, 1 / 8, 4 / 8]),  # 2..9 capped at the 6 cells
        ((1, 1), (0, 3), [1 / 4, 3 / 4]),
        ((4, 4), 7, [0] * 7 + [1]),
        ([(2, 2), (8, 8)], 6, [0, 0, 0, 0, 1 / 2, 0, 1 / 2]),  # 6 cells, or all 4 of a 2x2 grid
    ],
)
def test_hide_and_seek_erased_counts(grid_size, erased, probabilities) -> None:
    # Would fail for an off-by-one range (exclusive hi), no cap, or a cap at the lattice size.
    params = sample(RandomHideAndSeek(grid_size=grid_size, erased_patches=erased, generator=gen(24)), (32, 32))
    assert not (params["hidden"] & ~valid_cells(params)).any()
    counts = params["hidden"].flatten(1).sum(1).numpy()
    observed = np.bincount(counts, minlength=len(probabilities))
    assert len(observed) == len(probabilities)
    assert_frequencies(observed, np.array(probabilities))


def test_hide_and_seek_hidden_cells_are_uniform_over_the_grid() -> None:
    # Would fail if low scores favoured some cells (e.g. always the first cells, or rows before columns).
    params = sample(RandomHideAndSeek(grid_size=(4, 5), erased_patches=3, generator=gen(25)), (32, 32))
    assert (params["hidden"].flatten(1).sum(1) == 3).all()
    per_cell = params["hidden"].sum(0).flatten().numpy()
    assert_frequencies(per_cell, np.full(20, 1 / 20))


@pytest.mark.parametrize("hide_prob", [0.3, 0.5, 0.9])
def test_hide_and_seek_hide_prob(hide_prob) -> None:
    transform = RandomHideAndSeek(grid_size=[(4, 4), (8, 8)], erased_patches=0, hide_prob=hide_prob, generator=gen(26))
    params = sample(transform, (32, 32))
    valid = valid_cells(params)
    hidden = params["hidden"]
    assert not (hidden & ~valid).any()
    cells = int(valid.sum())
    rate = hidden.sum().item() / cells
    assert abs(rate - hide_prob) < 5 * math.sqrt(hide_prob * (1 - hide_prob) / cells)
    # Independent cells: the count of an 8x8 image is Binomial(64, p), whose variance a fixed or
    # per-image-shared draw would not have.
    big = params["rows"] == 8
    counts = hidden[big].flatten(1).sum(1).double()
    n, var = counts.numel(), 64 * hide_prob * (1 - hide_prob)
    mu4 = var * (1 + 3 * (64 - 2) * hide_prob * (1 - hide_prob))
    se = math.sqrt((mu4 - var**2 * (n - 3) / (n - 1)) / n)
    assert abs(counts.var().item() - var) < 5 * se


def test_hide_and_seek_grid_candidates_are_drawn_per_image() -> None:
    candidates = [(2, 2), (3, 4), (8, 8), (8, 16)]
    params = sample(RandomHideAndSeek(grid_size=[2, (3, 4), 8, (8, 16)], generator=gen(27)), (32, 64))
    pairs = list(zip(params["rows"].tolist(), params["cols"].tolist(), strict=True))
    assert set(pairs) == set(candidates)
    assert params["hidden"].shape == (N, 8, 16)
    assert_frequencies(np.array([pairs.count(c) for c in candidates]), np.full(4, 1 / 4))


# --------------------------------------------------------------------------------------------
# Sampling statistics of the boxes.
# --------------------------------------------------------------------------------------------

BIG = (480, 640)  # large images keep the pixel rounding of the sizes small


def patch_sizes(params: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heights, widths and counts of the active patches (one per image for Cutout)."""
    h, w = params["height"], params["width"]
    if "active" not in params:
        return h.numpy(), w.numpy(), np.ones(h.shape[0])
    active = params["active"]
    count = params["count"].view(-1, 1).expand_as(h)
    return h[active].numpy(), w[active].numpy(), count[active].numpy().astype(np.float64)


AREA_CASES = {
    "cutout": (lambda g: RandomCutout(patch_area=(0.05, 0.4), generator=g), (0.05, 0.4)),
    "erasing": (lambda g: RandomErasing(patch_area=(0.05, 0.3), patch_aspect_ratio=(0.5, 2.0), generator=g),
                (0.05, 0.3)),
    "erasing_default_aspect": (lambda g: RandomErasing(patch_area=(0.02, 0.1), generator=g), (0.02, 0.1)),
    "erasing_count": (
        lambda g: RandomErasing(patch_area=(0.1, 0.4), patch_aspect_ratio=(0.5, 1.5), patch_count=(1, 3), generator=g),
        (0.1, 0.4),
    ),
}


@pytest.mark.parametrize("case", list(AREA_CASES))
def test_area_fractions_are_uniform_over_the_range(case) -> None:
    # Every configuration fits the 480x640 image, so no candidate is ever redrawn. The measured area
    # h * w / (H W) (times the count: the drawn area is split between the patches) differs from the
    # drawn fraction by at most (0.5 (h + w) + 0.75) / (H W) (each side is rounded by <= 0.5 px);
    # that shift moves the empirical CDF by at most slack / (hi - lo). A uniform side, or a range
    # off by 10%, gives D > 0.1, far above the ~0.045 allowed.
    make, (lo, hi) = AREA_CASES[case]
    h, w, count = patch_sizes(sample(make(gen(28)), BIG))
    pixels = BIG[0] * BIG[1]
    fraction = h * w / pixels * count
    slack = float(((0.5 * (h + w) + 0.75) / pixels * count).max())
    width = hi - lo
    assert stats.kstest(fraction, stats.uniform(lo, width).cdf).statistic <= ks_limit(fraction.size) + slack / width
    # The ends of the range are reached: P(min > lo + 0.005 (hi - lo)) = 0.995^n < 1e-8.
    assert lo - slack <= fraction.min() <= lo + 0.005 * width + slack
    assert hi - 0.005 * width - slack <= fraction.max() <= hi + slack


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
def test_aspect_ratios_are_log_uniform(case) -> None:
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
def test_erasing_patch_count_is_uniform(counts) -> None:
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
        (lambda g: RandomCutout(patch_area=0.1, generator=g), (37, 53)),  # 14 px square
        (lambda g: RandomErasing(patch_area=0.2, patch_aspect_ratio=0.5, generator=g), (37, 53)),  # 14 x 28
        (lambda g: RandomErasing(patch_area=0.2, patch_aspect_ratio=0.5, generator=g), (53, 37)),
    ],
)
def test_boxes_are_placed_uniformly_inside(make, size) -> None:
    # Would fail for a biased placement such as floor(U * (H - h)), which never reaches the last row.
    params = sample(make(gen(31)), size)
    for start, length, extent in (("top", "height", size[0]), ("left", "width", size[1])):
        sizes = params[length].flatten()
        assert (sizes == sizes[0]).all()
        positions = extent - int(sizes[0]) + 1
        observed = np.bincount(params[start].flatten().numpy(), minlength=positions)
        assert len(observed) == positions
        assert_frequencies(observed, np.full(positions, 1 / positions))


@pytest.mark.parametrize(("size", "area"), [((37, 53), 0.1), ((32, 32), 0.25)])
def test_cutout_allow_partial_centres_are_uniform_over_the_image(size, area) -> None:
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
# Sampling statistics of GridMask.
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
def test_grid_mask_unit_sizes(size, unit_length) -> None:
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
def test_grid_mask_masked_fraction(unit_length, masked_ratio) -> None:
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


def test_grid_mask_offsets_are_uniform() -> None:
    params = sample(RandomGridMask(unit_length=0.25, generator=gen(35)), (96, 128))
    assert (params["unit"] == 24).all()
    for key in ("offset_y", "offset_x"):
        observed = np.bincount(params[key].numpy(), minlength=24)
        assert len(observed) == 24
        assert_frequencies(observed, np.full(24, 1 / 24))
    # The two offsets are independent draws.
    assert abs(np.corrcoef(params["offset_y"].numpy(), params["offset_x"].numpy())[0, 1]) < 5 / math.sqrt(N)


@pytest.mark.parametrize("rotation", [1.0, 30.0, 360.0])
def test_grid_mask_rotation_angles_are_uniform(rotation) -> None:
    # The angle is stored in radians; in degrees it is uniform on [-rotation, rotation]. A [0, rotation]
    # range or a radians/degrees mix-up gives D >= 0.5.
    params = sample(RandomGridMask(rotation=rotation, generator=gen(36)), (32, 32))
    degrees = np.degrees(params["angle"].numpy().astype(np.float64))
    assert stats.kstest(degrees, stats.uniform(-rotation, 2 * rotation).cdf).statistic <= ks_limit(N)
    assert -rotation * (1 + 1e-6) <= degrees.min() <= -rotation * 0.995
    assert rotation * 0.995 <= degrees.max() <= rotation * (1 + 1e-6)
