"""Hide-and-Seek (``RandomHideAndSeek``), torch and Keras: the erased pixels are exactly the hidden
cells painted by slicing with the documented boundaries ``floor(i * H / rows)``
(``tests/references.py``); cells tile the image; erased counts, hidden cells, ``hide_prob`` and grid
candidates follow their distributions. The fills every masking strategy shares: ``test_fills.py``.
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
    N,
    assert_frequencies,
    check_changed_pixels_are_exactly_the_region,
    check_values_outside_the_region_survive_bit_identical,
    pixel_cases,
    sample,
)
from torch import Tensor

from maskmix.keras import RandomHideAndSeek as KerasRandomHideAndSeek
from maskmix.torch import RandomHideAndSeek

# --------------------------------------------------------------------------------------------
# torch: pixel accounting.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shape", "dtype"), pixel_cases('hide_and_seek', 'hide_and_seek_prob'))
def test_torch_changed_pixels_are_exactly_the_region_from_params(name, shape, dtype) -> None:
    check_changed_pixels_are_exactly_the_region(name, shape, dtype)


@pytest.mark.parametrize("name", ['hide_and_seek'])
def test_torch_values_outside_the_region_survive_bit_identical(name) -> None:
    check_values_outside_the_region_survive_bit_identical(name)


# --------------------------------------------------------------------------------------------
# torch: cells.
# --------------------------------------------------------------------------------------------


def single_cell_regions(size: tuple[int, int], rows: int, cols: int) -> dict[tuple[int, int], Tensor]:
    """The pixels of each cell, observed by hiding that one cell through ``transform``; a grid
    finer than the image has one cell per pixel along that side."""
    transform = RandomHideAndSeek(grid_size=(rows, cols), erased_patches=1, generator=gen(22))
    images = make_images((1, 1, *size), seed=23)
    params = transform.make_params([images])
    rows, cols = params["hidden"].shape[1:]
    assert (rows, cols) == (min(rows, size[0]), min(cols, size[1]))
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
def test_torch_hide_and_seek_cells_tile_the_image(size, rows, cols) -> None:
    # Implementation-independent: cells are rectangles in a grid that partition the image, and cell
    # heights / widths differ by at most one pixel.
    regions = single_cell_regions(size, rows, cols)
    rows, cols = min(rows, size[0]), min(cols, size[1])  # at most one cell per pixel
    assert len(regions) == rows * cols and all(region.any() for region in regions.values())
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
def test_torch_hide_and_seek_cells_follow_the_documented_floor_boundaries(size, rows, cols) -> None:
    height, width = size
    regions = single_cell_regions(size, rows, cols)
    rows, cols = min(rows, height), min(cols, width)  # at most one cell per pixel
    assert len(regions) == rows * cols
    for (i, j), region in regions.items():
        expected = torch.zeros(size, dtype=torch.bool)
        top, bottom = math.floor(i * height / rows), math.floor((i + 1) * height / rows)
        left, right = math.floor(j * width / cols), math.floor((j + 1) * width / cols)
        expected[top:bottom, left:right] = True
        assert torch.equal(region, expected), (i, j)


# --------------------------------------------------------------------------------------------
# torch: sampling statistics.
# --------------------------------------------------------------------------------------------


def valid_cells(params: dict) -> Tensor:
    lattice = params["hidden"].shape[1:]
    return (torch.arange(lattice[0]).view(1, -1, 1) < params["rows"].view(-1, 1, 1)) & (
        torch.arange(lattice[1]).view(1, 1, -1) < params["cols"].view(-1, 1, 1)
    )


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
def test_torch_hide_and_seek_erased_counts(grid_size, erased, probabilities) -> None:
    # Would fail for an off-by-one range (exclusive hi), no cap, or a cap at the lattice size.
    params = sample(RandomHideAndSeek(grid_size=grid_size, erased_patches=erased, generator=gen(24)), (32, 32))
    assert not (params["hidden"] & ~valid_cells(params)).any()
    counts = params["hidden"].flatten(1).sum(1).numpy()
    observed = np.bincount(counts, minlength=len(probabilities))
    assert len(observed) == len(probabilities)
    assert_frequencies(observed, np.array(probabilities))


def test_torch_hide_and_seek_hidden_cells_are_uniform_over_the_grid() -> None:
    # Would fail if low scores favoured some cells (e.g. always the first cells, or rows before columns).
    params = sample(RandomHideAndSeek(grid_size=(4, 5), erased_patches=3, generator=gen(25)), (32, 32))
    assert (params["hidden"].flatten(1).sum(1) == 3).all()
    per_cell = params["hidden"].sum(0).flatten().numpy()
    assert_frequencies(per_cell, np.full(20, 1 / 20))


@pytest.mark.parametrize(("cells", "most"), [(64, 5), (6, 9), (20, 20), (7, 0)])
def test_torch_hide_and_seek_hides_the_lowest_scored_cells(cells, most) -> None:
    # The cells are picked by a partial sort of per-cell scores: the `count` cells hidden in an
    # image must be its `count` lowest-scored ones (an independent full argsort here), for every
    # count up to the bound, also above the number of cells. Would fail for an unsorted partial
    # pick (the first `count` of the lowest few in another order), the highest scores, or an
    # off-by-one count.
    from maskmix.torch.hide_and_seek import _lowest_cells

    generator = gen(26)
    scores = torch.rand(300, cells, generator=generator)
    count = torch.randint(0, most + 1, (300,), generator=generator)
    hidden = _lowest_cells(scores, count, most)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    assert torch.equal(hidden, ranks < count.view(-1, 1))
    assert torch.equal(hidden.sum(1), count.clamp_max(cells))


@pytest.mark.parametrize("hide_prob", [0.3, 0.5, 0.9])
def test_torch_hide_and_seek_hide_prob(hide_prob) -> None:
    transform = RandomHideAndSeek(grid_size=[(4, 4), (8, 8)], hide_prob=hide_prob, generator=gen(26))
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


def test_torch_hide_and_seek_grid_candidates_are_drawn_per_image() -> None:
    candidates = [(2, 2), (3, 4), (8, 8), (8, 16)]
    params = sample(RandomHideAndSeek(grid_size=[2, (3, 4), 8, (8, 16)], generator=gen(27)), (32, 64))
    pairs = list(zip(params["rows"].tolist(), params["cols"].tolist(), strict=True))
    assert set(pairs) == set(candidates)
    assert params["hidden"].shape == (N, 8, 16)
    assert_frequencies(np.array([pairs.count(c) for c in candidates]), np.full(4, 1 / 4))


# --------------------------------------------------------------------------------------------
# Keras.
# --------------------------------------------------------------------------------------------


#: The Keras tests' image size.
KERAS_SIZE = (13, 11)


def keras_images(batch: int = 16, dtype: str = "float32", size=KERAS_SIZE, channels: int = 3, seed: int = 0):
    return kh.to_tensor(kh.make_images((batch, *size, channels), dtype, seed=seed), dtype)


@pytest.mark.parametrize(
    "kwargs",
    [dict(grid_size=(3, 4), erased_patches=(0, 12)), dict(grid_size=[2, (3, 5), 4], erased_patches=3),
     dict(grid_size=4, hide_prob=0.5)],
)
def test_keras_hide_and_seek_pixel_accounting(kwargs):
    x = keras_images(48)
    layer = KerasRandomHideAndSeek(seed=3, **kwargs)
    out, p = kh.run_with_params(layer, x)
    expected = kh.reference_hide_and_seek(p["rows"], p["cols"], p["hidden"], KERAS_SIZE)
    np.testing.assert_array_equal(kh.changed_pixels(kh.np_(x), out), expected)
    np.testing.assert_array_equal(p["hidden"].sum((1, 2)), p["count"])
    valid = (np.arange(p["hidden"].shape[1])[None, :, None] < p["rows"][:, None, None]) & (
        np.arange(p["hidden"].shape[2])[None, None, :] < p["cols"][:, None, None]
    )
    assert not (p["hidden"] & ~valid).any()
    if "erased_patches" in kwargs:
        erased = kwargs["erased_patches"]
        lo, hi = (erased, erased) if isinstance(erased, int) else erased
        np.testing.assert_array_equal(p["count"], np.clip(p["count"], lo, np.minimum(hi, p["rows"] * p["cols"])))


def test_keras_hide_and_seek_grid_candidates_and_counts_are_uniform():
    layer = KerasRandomHideAndSeek(grid_size=[2, (3, 5)], erased_patches=(0, 3), seed=7)
    p = {k: kh.np_(v) for k, v in layer.get_random_transformation(keras_images(2000, size=(6, 10), channels=1)).items()}
    assert abs((p["rows"] == 2).mean() - 0.5) < 0.05
    counts = np.bincount(p["count"], minlength=4) / 2000
    np.testing.assert_allclose(counts, 0.25, atol=0.04)


# --------------------------------------------------------------------------------------------
# The options of the paper's code (from_paper; tests/papers/test_hide_and_seek_paper.py compares
# them with the official sampler).
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [RandomHideAndSeek, KerasRandomHideAndSeek], ids=["torch", "keras"])
def test_cell_size_is_validated_by_name(cls) -> None:
    with pytest.raises(ValueError, match=r"^RandomHideAndSeek: cell_size must be an integer >= 0 or a non-empty "
                                         r"list of integers >= 0; got \[16, -1\]$"):
        cls(cell_size=[16, -1])
    with pytest.raises(ValueError, match=r"^RandomHideAndSeek: cell_size .*; got \[\]$"):
        cls(cell_size=[])
    with pytest.raises(TypeError, match=r"^RandomHideAndSeek: cell_size .*; got \[16, 2\.5\]$"):
        cls(cell_size=[16, 2.5])
    assert cls(cell_size=16).cell_size == (16,)
    assert cls(cell_size=[0, 16]).cell_size == (0, 16)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_cells_in_pixels_start_at_the_corner_with_partial_last_cells(framework: str) -> None:
    """Sides 0 (nothing hidden) and 5 on 12x13 images: hidden pixels are unions of the cells
    ``[5i, 5i + 5) x [5j, 5j + 5)`` clipped to the image, the 2- and 3-pixel last ones included."""
    if framework == "torch":
        x = make_images((60, 1, 12, 13))
        masks = changed_pixels(x, RandomHideAndSeek(cell_size=[0, 5], hide_prob=0.5, generator=gen(0))(x)).numpy()
    else:
        xs = kh.make_images((60, 12, 13, 1))
        masks = (np.asarray(KerasRandomHideAndSeek(cell_size=[0, 5], hide_prob=0.5, seed=0)(xs)) != xs)[..., 0]
    empty = ~masks.any(axis=(1, 2))
    assert 0 < empty.sum() < 60  # the side 0 hides nothing
    for mask in masks:
        for y in range(0, 12, 5):
            for x0 in range(0, 13, 5):
                cell = mask[y:y + 5, x0:x0 + 5]
                assert cell.all() or not cell.any()
    assert masks[:, 10:, :].any() and masks[:, :, 10:].any()
    # The partial cells are cells of their own, drawn independently of their neighbours.
    drawn = masks[~empty]
    assert not np.array_equal(drawn[:, 10], drawn[:, 5]) and not np.array_equal(drawn[:, :, 10], drawn[:, :, 5])


@pytest.mark.parametrize("grid_size", [(8, 8), [(8, 8), (16, 3)]], ids=["one grid", "candidates"])
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_a_grid_finer_than_the_image_hides_one_pixel_per_cell(framework: str, grid_size) -> None:
    """An 8x8 grid on 4x5 images had empty cells (boundaries floor(i H / rows)): hiding one changed
    nothing, and 148 of 200 images with one hidden cell came back unchanged. At most one cell per
    pixel: every hidden cell is at least one pixel, so n hidden cells are n pixels here."""
    if framework == "torch":
        x = make_images((200, 1, 4, 5))
        out = RandomHideAndSeek(grid_size=grid_size, erased_patches=3, fill_method=-1.0, generator=gen(0))(x)
        masks = changed_pixels(x, out).numpy()
    else:
        xs = kh.make_images((200, 4, 5, 1))
        layer = KerasRandomHideAndSeek(grid_size=grid_size, erased_patches=3, fill_method=-1.0, seed=0)
        masks = (np.asarray(layer(xs)) != xs)[..., 0]
    hidden = masks.sum(axis=(1, 2))
    # (8, 8) -> 4 x 5 one-pixel cells; (16, 3) -> 4 x 3 cells of one row and 1-2 columns.
    assert hidden.min() >= 3
    if not isinstance(grid_size, list):
        np.testing.assert_array_equal(hidden, 3)
