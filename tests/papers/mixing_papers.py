"""Shared measurements of the mixing strategies' paper tests (``tests/papers/test_<flag>_paper.py``).

Each test runs a maskmix transform on random images and reads the quantities that define the
paper's sampler back from the *outputs* (the rows and columns of the changed pixels, the label
weights); the official samplers are re-implemented in NumPy in each test file. Fixed seeds make
every p-value below deterministic: the thresholds are not flaky, and each test also shows that a
wrong law (the old default) is rejected by the same statistic.

The presets of CutMix, Mixup, CutBlur and Cut-Thumbnail draw once per batch, as their official
code (``sampling="batch"``). Each law of one draw is measured with :func:`per_image` (the same
configuration drawn per image: n draws from one call), and the per-batch sampling itself from many
small batches (:func:`batch_boxes`): within a batch one draw, over the batches the official law.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

#: A law is accepted when its two-sample p-value against the official sampler exceeds this.
ACCEPT = 1e-3
#: The wrong law (the old default) must give a p-value below this.
REJECT = 1e-4


def per_image(config: Mapping[str, Any]) -> dict[str, Any]:
    """A preset's configuration drawn per image (and, for a mixer, with partners among the other
    images): one call then gives as many independent draws of the preset's law as images."""
    return {**config, "sampling": "image", **({"partner": "other"} if "partner" in config else {})}


def batch_boxes(calls: list[tuple[np.ndarray, np.ndarray]], channel_axis: int) -> dict[str, np.ndarray]:
    """Per call of a box strategy on a small batch (``(before, after)`` pairs): the box of the
    batch (0 x 0 at (0, 0) where no image changed), whether every changed image has that same
    box (one draw per batch), how many images changed and the batch size."""
    rows: dict[str, list[Any]] = {key: [] for key in ("top", "left", "height", "width", "shared", "changed", "size")}
    for before, after in calls:
        boxes = changed_boxes(before, after, channel_axis)
        changed = boxes["height"] > 0
        first = int(np.argmax(changed)) if changed.any() else 0
        for key in ("top", "left", "height", "width"):
            rows[key].append(boxes[key][first])
        same = all((boxes[key][changed] == boxes[key][first]).all() for key in ("top", "left", "height", "width"))
        rows["shared"].append(bool(same and boxes["is_box"].all()))
        rows["changed"].append(int(changed.sum()))
        rows["size"].append(len(before))
    return {key: np.asarray(value) for key, value in rows.items()}


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
