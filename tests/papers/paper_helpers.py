"""Shared plumbing of the paper-preset tests (``tests/papers/``): run a preset on a constant batch
in either framework and read back, from the *outputs*, which pixels it changed.

Each test module re-implements its paper's official sampler in NumPy and compares what maskmix
produced with what the official code would have produced, by two-sample tests on quantities
measured the same way from both (box sides, masked fractions, run lengths...). The images are a
constant that no preset fill can produce (``BACKGROUND``), so the changed pixels are exactly the
erased ones.
"""

from __future__ import annotations

import keras_helpers  # noqa: F401  (first: loads Triton before TensorFlow, see there)

# isort: split

from typing import Any

import numpy as np
import torch
from scipy import stats

from maskmix import registry

#: The value of every input pixel: no preset fills with it.
BACKGROUND = 5.0

#: Significance threshold of the two-sample tests. With fixed seeds the tests are deterministic;
#: at 1e-3 a correct sampler fails with probability 1e-3 per seed choice, and the wrong laws the
#: tests also run (the old defaults) give p-values below 1e-6.
ALPHA = 1e-3

FRAMEWORKS = ("torch", "keras")


def erased(framework: str, name: str, setting: str, count: int, height: int, width: int, *,
           channels: int = 1, chunk: int = 500, seed: int = 0, **options: Any) -> np.ndarray:
    """Boolean ``(count, H, W)``: the pixels the preset ``setting`` of strategy ``name`` changed.

    ``options`` go on top of the preset (``from_paper(setting, **options)``): the tests use them
    to run a wrong law through the same measurement. The batch is processed in chunks of
    ``chunk`` images (one call each) with a fixed seed.
    """
    cls = registry.implementation(name, framework)
    out = []
    if framework == "torch":
        transform = cls.from_paper(setting, generator=torch.Generator().manual_seed(seed), **options)
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            images = torch.full((n, channels, height, width), BACKGROUND)
            out.append((transform(images) != BACKGROUND).any(dim=1).numpy())
    else:
        layer = cls.from_paper(setting, seed=seed, **options)
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            images = np.full((n, height, width, channels), BACKGROUND, dtype="float32")
            out.append((np.asarray(layer(images, training=True)) != BACKGROUND).any(axis=-1))
    return np.concatenate(out)


def bounding_sides(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the number of rows and of columns that hold a changed pixel (0, 0 if none)."""
    return masks.any(axis=2).sum(axis=1), masks.any(axis=1).sum(axis=1)


def longest_run(masks: np.ndarray) -> np.ndarray:
    """Per image, the longest run of consecutive changed pixels along a row or a column."""
    best = np.zeros(len(masks), dtype=np.int64)
    for lines in (masks, masks.transpose(0, 2, 1)):
        run = np.zeros(lines.shape[:2], dtype=np.int64)
        longest = np.zeros(lines.shape[:2], dtype=np.int64)
        for x in range(lines.shape[2]):
            run = np.where(lines[:, :, x], run + 1, 0)
            longest = np.maximum(longest, run)
        best = np.maximum(best, longest.max(axis=1))
    return best


def same_law(a: np.ndarray, b: np.ndarray) -> float:
    """p-value of the two-sample Kolmogorov-Smirnov test of ``a`` and ``b``."""
    return float(stats.ks_2samp(a, b).pvalue)


def same_discrete_law(a: np.ndarray, b: np.ndarray) -> float:
    """p-value of the chi-square test of homogeneity of two samples on a discrete support.

    Values seen fewer than 5 times in the pooled sample are merged into one cell, so every
    expected count is large enough for the chi-square approximation.
    """
    values, pooled = np.unique(np.concatenate([a, b]), return_counts=True)
    common = values[pooled >= 5]
    table = np.array([[np.sum(np.isin(s, common, invert=True))] + [np.sum(s == v) for v in common] for s in (a, b)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table).pvalue)


def same_proportion(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """p-value of the two-sided test that two binomial proportions are equal (Fisher's exact test)."""
    return float(stats.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]]).pvalue)
