"""Shared measurements of the mixing strategies' paper tests (``tests/papers/test_<flag>_paper.py``).

Each test runs a maskmix transform on random images and reads the quantities that define the
paper's sampler back from the *outputs* (the rows and columns of the changed pixels, the label
weights); the official samplers are re-implemented in NumPy in each test file. Fixed seeds make
every p-value below deterministic: the thresholds are not flaky, and each test also shows that a
wrong law (the old default) is rejected by the same statistic.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

#: A law is accepted when its two-sample p-value against the official sampler exceeds this.
ACCEPT = 1e-3
#: The wrong law (the old default) must give a p-value below this.
REJECT = 1e-4


def changed_boxes(before: np.ndarray, after: np.ndarray, channel_axis: int) -> dict[str, np.ndarray]:
    """Per image ``(B, ...)``: the bounding box of the pixels that changed, and whether the changed
    pixels fill it exactly (a box, not another shape).

    Returns int arrays ``top``, ``left``, ``height``, ``width`` (0 and 0 for an unchanged image) and
    the bool array ``is_box``.
    """
    changed = np.any(np.asarray(before) != np.asarray(after), axis=channel_axis)  # (B, H, W)
    rows, cols = changed.any(axis=2), changed.any(axis=1)
    height, width = rows.sum(axis=1), cols.sum(axis=1)
    top = np.where(height > 0, rows.argmax(axis=1), 0)
    left = np.where(width > 0, cols.argmax(axis=1), 0)
    # Rows (columns) of a box are contiguous, and every pixel of it changed.
    last_row = np.where(height > 0, rows.shape[1] - 1 - rows[:, ::-1].argmax(axis=1), -1)
    last_col = np.where(width > 0, cols.shape[1] - 1 - cols[:, ::-1].argmax(axis=1), -1)
    is_box = (changed.sum(axis=(1, 2)) == height * width) & (last_row - top + 1 == height) & (
        last_col - left + 1 == width) | (height == 0)
    return {"top": top, "left": left, "height": height, "width": width, "is_box": is_box}


def chi2_same_law(a: np.ndarray, b: np.ndarray) -> float:
    """p-value of the chi-square test that two samples of a discrete quantity share one law
    (contingency table over the values either sample takes)."""
    values = np.union1d(a, b)
    table = np.array([[np.sum(a == v) for v in values], [np.sum(b == v) for v in values]])
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table)[1])


def ks_same_law(a: np.ndarray, b: np.ndarray) -> float:
    """p-value of the two-sample Kolmogorov-Smirnov test (conservative for discrete values: a
    common law passes at least as easily)."""
    return float(stats.ks_2samp(a, b).pvalue)
