"""Hide-and-Seek's preset against the official sampler (Singh & Lee, 2017).

The reference re-implements ``hide_patch`` of the official ``hide_patch.py``
(kkanshul/Hide-and-Seek) in NumPy: a cell side drawn per image from ``{0, 16, 32, 44, 56}``
pixels (0: nothing hidden), cells tiling the image from ``(0, 0)`` with partial last ones, each
hidden with probability 0.5. maskmix's hidden pixels are read back from its outputs.
"""

from __future__ import annotations

import paper_helpers as ph

# isort: split

import numpy as np
import pytest

#: What this file verifies, in a few words (the README's "Reproducing the papers" table).
VERIFIED = (
    "cell sizes in pixels with the no-hiding candidate, grid from (0, 0), hidden cells; grids in cell "
    "counts rejected"
)

SIZE = 224
SIDES = (0, 16, 32, 44, 56)


def official_masks(n: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        side = SIDES[rng.integers(0, len(SIDES))]
        if side == 0:
            continue
        for y in range(0, size, side):
            for x in range(0, size, side):
                if rng.random() <= 0.5:
                    masks[i, y:y + side, x:x + side] = True
    return masks


def cell_side(mask: np.ndarray) -> int | None:
    """The largest official side whose cells from (0, 0) the mask is a union of (None if none).

    A union of 32-pixel cells is also a union of 16-pixel cells: the largest consistent side is
    the one drawn.
    """
    for side in sorted(SIDES[1:], reverse=True):
        cells = [mask[y:y + side, x:x + side] for y in range(0, SIZE, side) for x in range(0, SIZE, side)]
        if all(cell.all() or not cell.any() for cell in cells):
            return side
    return None


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return official_masks(1500, np.random.default_rng(0))


@pytest.mark.parametrize("framework", ph.FRAMEWORKS)
def test_hidden_cells_follow_the_official_sampler(framework: str, reference: np.ndarray) -> None:
    ours = ph.erased(framework, "RandomHideAndSeek", "imagenet", 400 if framework == "torch" else 300, SIZE, SIZE,
                     chunk=150)
    # Every mask is a union of whole cells of one of the official sides, laid from (0, 0).
    assert all(cell_side(mask) is not None for mask in ours if mask.any())
    # Nothing hidden: the side 0 (1 in 5) and, rarely, no cell drawn.
    empty, ref_empty = ~ours.any(axis=(1, 2)), ~reference.any(axis=(1, 2))
    assert ph.same_proportion(int(empty.sum()), len(ours), int(ref_empty.sum()), len(reference)) > ph.ALPHA
    assert ph.same_law(ours.mean(axis=(1, 2)), reference.mean(axis=(1, 2))) > ph.ALPHA
    sides = [cell_side(mask) for mask in ours if mask.any()]
    ref_sides = [cell_side(mask) for mask in reference if mask.any()]
    assert ph.same_discrete_law(np.array(sides), np.array(ref_sides)) > ph.ALPHA
    # 224 = 5 * 44 + 4: the partial last row and column of 44-pixel cells are hidden too.
    partial = [mask[220:].any() and mask[:, 220:].any() for mask in ours if mask.any() and cell_side(mask) == 44]
    assert len(partial) > 20 and np.mean(partial) > 0.5


@pytest.mark.parametrize("framework", ph.FRAMEWORKS)
def test_grids_in_cell_counts_are_rejected(framework: str, reference: np.ndarray) -> None:
    """The mutation: the closest cell-count grids (4, 5 and 7 cells a side; 44 px cells have no
    count) with no empty candidate fail the same checks."""
    ours = ph.erased(framework, "RandomHideAndSeek", "imagenet", 200, SIZE, SIZE, cell_size=None,
                     grid_size=[4, 5, 7, 14])
    assert not all(cell_side(mask) is not None for mask in ours if mask.any())
    empty, ref_empty = ~ours.any(axis=(1, 2)), ~reference.any(axis=(1, 2))
    assert ph.same_proportion(int(empty.sum()), len(ours), int(ref_empty.sum()), len(reference)) < ph.ALPHA
