"""Cutout's presets against the official sampler (DeVries & Taylor, 2017).

The reference re-implements ``Cutout.__call__`` of the official ``util/cutout.py``
(uoguelph-mlrg/Cutout) in NumPy: for each of ``n_holes`` holes, a centre ``(randint(h),
randint(w))`` and the box ``[y - L//2, y + L//2) x [x - L//2, x + L//2)`` clipped to the image,
zeroed (the union of the holes). The centre is uniform over the pixels, so the law of one hole's
clipped box is known exactly by enumerating the centres; the tests compare the boxes read back
from maskmix's outputs with it (support equality and chi-square), and the union of several holes
with a sample of the reference.
"""

from __future__ import annotations

import paper_helpers as ph

# isort: split

import numpy as np
import pytest

from maskmix import registry

#: What this file verifies, in a few words (the README's "Reproducing the papers" table).
VERIFIED = (
    "position and sides of the clipped square (exact law by enumerating the centres, chi-square), odd "
    "sides, several holes"
)

SIZE = 32
SETTINGS = [(setting, registry.get("RandomCutout").papers[setting].config["patch_side"])
            for setting in registry.get("RandomCutout").papers]


def official_masks(n: int, length: int, size: int, rng: np.random.Generator, n_holes: int = 1) -> np.ndarray:
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        for _ in range(n_holes):
            y, x = rng.integers(size), rng.integers(size)
            y1, y2 = np.clip(y - length // 2, 0, size), np.clip(y + length // 2, 0, size)
            x1, x2 = np.clip(x - length // 2, 0, size), np.clip(x + length // 2, 0, size)
            masks[i, y1:y2, x1:x2] = True
    return masks


def official_side_law(length: int, size: int) -> dict[int, float]:
    """The exact law of one clipped box side: its length for every centre, each of weight 1 / size."""
    sides = [min(c + length // 2, size) - max(c - length // 2, 0) for c in range(size)]
    values, counts = np.unique(sides, return_counts=True)
    return dict(zip(values.tolist(), (counts / size).tolist(), strict=True))


def assert_side_law(sides: np.ndarray, length: int) -> None:
    law = official_side_law(length, SIZE)
    assert set(np.unique(sides).tolist()) == set(law)
    observed = np.array([np.sum(sides == v) for v in law])
    expected = np.array(list(law.values())) * len(sides)
    assert ph.stats.chisquare(observed, expected).pvalue > ph.ALPHA


@pytest.mark.parametrize(("setting", "length"), SETTINGS)
@pytest.mark.parametrize("framework", ph.FRAMEWORKS)
def test_the_clipped_square_follows_the_official_sampler(framework: str, setting: str, length: int) -> None:
    masks = ph.erased(framework, "RandomCutout", setting, 2000 if framework == "torch" else 1000, SIZE, SIZE)
    h, w = ph.bounding_sides(masks)
    assert np.array_equal(masks.sum(axis=(1, 2)), h * w)  # one box per image
    assert_side_law(h, length)
    assert_side_law(w, length)


@pytest.mark.parametrize("framework", ph.FRAMEWORKS)
def test_an_odd_side_erases_the_official_even_box(framework: str) -> None:
    """``symmetric_box``: ``[c - L//2, c + L//2)`` spans ``2 * (L//2)`` pixels; the mutation
    (maskmix's ``[c - L//2, c - L//2 + L)``) puts 7-pixel sides outside the official support."""
    masks = ph.erased(framework, "RandomCutout", "cifar10", 1000, SIZE, SIZE, patch_side=7)
    h, w = ph.bounding_sides(masks)
    assert_side_law(h, 7)
    assert_side_law(w, 7)
    masks = ph.erased(framework, "RandomCutout", "cifar10", 200, SIZE, SIZE, patch_side=7, symmetric_box=False)
    assert ph.bounding_sides(masks)[0].max() == 7 > max(official_side_law(7, SIZE))


@pytest.mark.parametrize("framework", ph.FRAMEWORKS)
def test_several_holes_are_placed_independently(framework: str) -> None:
    """``patch_count`` is the official ``n_holes``: the erased area of the union of 3 holes."""
    ours = ph.erased(framework, "RandomCutout", "cifar100", 1000, SIZE, SIZE, patch_count=3).sum(axis=(1, 2))
    ref = official_masks(10000, 8, SIZE, np.random.default_rng(0), n_holes=3).sum(axis=(1, 2))
    assert ph.same_law(ours, ref) > ph.ALPHA
    # The mutation: one hole per image is rejected by the same test.
    single = ph.erased(framework, "RandomCutout", "cifar100", 1000, SIZE, SIZE).sum(axis=(1, 2))
    assert ph.same_law(single, ref) < ph.ALPHA
