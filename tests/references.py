"""Framework-free NumPy references for the strategies' pixel and label semantics.

The torch tests (``tensor.numpy()``) and the Keras tests (NumPy arrays) of ``tests/strategies/``
check the transforms against these same functions. Each one rebuilds what a strategy documents
from its sampled parameters with plain Python loops and slicing, one image (or one output pixel)
at a time, independently of the library's vectorised code: this module imports only NumPy and
never maskmix, torch or keras.

Layouts: masks are ``(B, H, W)`` booleans; images are ``(H, W, C)`` (one image, channels last)
and come back as float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "box_mask",
    "color_jitter",
    "grid_mask",
    "hide_and_seek_mask",
    "mix_labels",
    "one_hot",
    "resize",
    "resize_matrix",
    "smooth_labels",
]


def _rows(values, batch: int | None = None) -> list[list[int]]:
    array = np.asarray(values)
    return array.reshape(array.shape[0] if batch is None else batch, -1).tolist()


def box_mask(top, left, height, width, size: tuple[int, int], active=None) -> np.ndarray:
    """``(B, H, W)`` mask of per-image boxes, painted by slicing.

    ``top``/``left``/``height``/``width`` are ``(B,)`` (one box per image) or ``(B, K)`` (``K``
    boxes per image, only those with ``active[b, k]`` painted).
    """
    top, left, height, width = (_rows(v) for v in (top, left, height, width))
    act = None if active is None else _rows(active)
    mask = np.zeros((len(top), *size), dtype=bool)
    for b in range(len(top)):
        for k in range(len(top[b])):
            if act is not None and not act[b][k]:
                continue
            mask[b, top[b][k] : top[b][k] + height[b][k], left[b][k] : left[b][k] + width[b][k]] = True
    return mask


def hide_and_seek_mask(rows, cols, hidden, size: tuple[int, int]) -> np.ndarray:
    """``(B, H, W)`` mask of the hidden cells of each image's own ``rows x cols`` grid, with the
    documented boundaries ``floor(i * H / rows)``, painted cell by cell.

    ``hidden`` is ``(B, R, C)`` over the largest grid; a hidden cell outside an image's own grid is
    an error (assertion).
    """
    height, width = size
    rows, cols, hidden = np.asarray(rows).tolist(), np.asarray(cols).tolist(), np.asarray(hidden).tolist()
    mask = np.zeros((len(rows), height, width), dtype=bool)
    for b, (r, c) in enumerate(zip(rows, cols, strict=True)):
        for i, row in enumerate(hidden[b]):
            for j, is_hidden in enumerate(row):
                if is_hidden:
                    assert i < r and j < c, "a cell outside the image's own grid is hidden"
                    top, bottom = (i * height) // r, ((i + 1) * height) // r
                    left, right = (j * width) // c, ((j + 1) * width) // c
                    mask[b, top:bottom, left:right] = True
    return mask


def grid_mask(unit, masked, offset_y, offset_x, size: tuple[int, int], angle=None) -> tuple[np.ndarray, np.ndarray]:
    """GridMask's region from the documented modulo formula, image by image, in float64.

    A pixel ``(y, x)`` is masked when ``(v + offset_y) % unit < masked`` and ``(u + offset_x) %
    unit < masked``, with ``(u, v) = (x, y)``, or, with a rotation ``angle`` (radians), the floors of
    ``(x, y)`` rotated by ``angle`` about the image centre ``((W - 1) / 2, (H - 1) / 2)``.

    Returns ``(region, ambiguous)``, two ``(B, H, W)`` masks: ``ambiguous`` marks the pixels whose
    rotated coordinates lie within 1e-3 of an integer, where a float32 floor may legitimately
    differ (never any without rotation).
    """
    height, width = size
    unit, masked = np.asarray(unit).tolist(), np.asarray(masked).tolist()
    offset_y, offset_x = np.asarray(offset_y).tolist(), np.asarray(offset_x).tolist()
    angles = None if angle is None else np.asarray(angle, dtype=np.float64).tolist()
    region = np.zeros((len(unit), height, width), dtype=bool)
    ambiguous = np.zeros_like(region)
    ys = np.arange(height, dtype=np.float64)[:, None]
    xs = np.arange(width, dtype=np.float64)[None, :]
    for b, (d, m, oy, ox) in enumerate(zip(unit, masked, offset_y, offset_x, strict=True)):
        if angles is None:
            u, v = np.broadcast_to(xs, (height, width)), np.broadcast_to(ys, (height, width))
        else:
            t = angles[b]
            yc, xc = ys - (height - 1) / 2, xs - (width - 1) / 2
            u = math.cos(t) * xc + math.sin(t) * yc
            v = math.cos(t) * yc - math.sin(t) * xc
            ambiguous[b] = (np.abs(u - np.round(u)) < 1e-3) | (np.abs(v - np.round(v)) < 1e-3)
        row = (np.floor(v).astype(np.int64) + oy) % d < m
        col = (np.floor(u).astype(np.int64) + ox) % d < m
        region[b] = row & col
    return region, ambiguous


# --------------------------------------------------------------------------------------------
# Resizing (CutBlur, Cut-Thumbnail).
# --------------------------------------------------------------------------------------------


def _cubic(d: float, a: float = -0.5) -> float:
    """Keys' cubic convolution kernel (``a = -0.5``: PIL, torch's antialiased bicubic, TF's keyscubic)."""
    if d < 1:
        return ((a + 2) * d - (a + 3)) * d * d + 1
    if d < 2:
        return (((d - 5) * d + 8) * d - 4) * a
    return 0.0


def resize_matrix(n_in: int, n_out: int, method: str) -> np.ndarray:
    """``(n_out, n_in)`` weights of a 1-D resize, one output pixel at a time.

    * ``nearest``: the source pixel ``floor((i + 0.5) * n_in / n_out)`` (half-pixel centres; the
      product in float32, as the frameworks' nearest kernels compute it);
    * ``nearest_legacy``: the source pixel ``floor(i * n_in / n_out)`` (``interpolate``'s default
      ``mode="nearest"``; the product in float32);
    * ``area``: the mean of the source pixels ``[floor(i n_in / n_out), ceil((i + 1) n_in / n_out))``
      (adaptive average pooling);
    * ``bilinear``/``bicubic``: the antialiased filter (triangle / Keys cubic) centred on
      ``(i + 0.5) * scale``, stretched by the scale when shrinking, weights normalised over the
      source pixels it covers.
    """
    scale = n_in / n_out
    matrix = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        if method == "nearest":
            matrix[i, min(math.floor(np.float32(scale) * np.float32(i + 0.5)), n_in - 1)] = 1.0
        elif method == "nearest_legacy":
            matrix[i, min(math.floor(np.float32(scale) * np.float32(i)), n_in - 1)] = 1.0
        elif method == "area":
            first, last = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
            matrix[i, first:last] = 1.0 / (last - first)
        elif method in ("bilinear", "bicubic"):
            stretch = max(scale, 1.0)
            support = (1.0 if method == "bilinear" else 2.0) * stretch
            centre = scale * (i + 0.5)
            for j in range(max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), n_in)):
                d = abs((j + 0.5 - centre) / stretch)
                matrix[i, j] = max(0.0, 1.0 - d) if method == "bilinear" else _cubic(d)
            matrix[i] /= matrix[i].sum()
        else:
            raise ValueError(f"unknown resize method {method!r}")
    return matrix


def resize(image, size: tuple[int, int], method: str) -> np.ndarray:
    """One ``(H, W, C)`` image resized to ``size`` (float64), separably by :func:`resize_matrix`."""
    image = np.asarray(image, dtype=np.float64)
    rows = resize_matrix(image.shape[0], size[0], method)
    cols = resize_matrix(image.shape[1], size[1], method)
    out = np.zeros((*size, image.shape[2]), dtype=np.float64)
    for c in range(image.shape[2]):
        out[:, :, c] = rows @ image[:, :, c] @ cols.T
    return out


# --------------------------------------------------------------------------------------------
# Colour jitter (CutPaste).
# --------------------------------------------------------------------------------------------

#: The ITU-R 601-2 luma weights torchvision's grayscale uses.
LUMA = (0.2989, 0.587, 0.114)


def color_jitter(patch, brightness: float, contrast: float, saturation: float, lo: float = 0.0,
                 hi: float = 1.0) -> np.ndarray:
    """torchvision's brightness, contrast and saturation adjustments of one ``(h, w, C)`` patch,
    in that order, within ``[lo, hi]`` (float64).

    Brightness blends with ``lo``, contrast with the patch's mean grey level, saturation with each
    pixel's grey level (the luma for RGB, the value itself for one channel: no change).
    """
    x = np.asarray(patch, dtype=np.float64)

    def grey(v: np.ndarray) -> np.ndarray:
        return (v @ np.array(LUMA))[..., None] if v.shape[-1] == 3 else v.mean(-1, keepdims=True)

    x = np.clip(lo + (x - lo) * brightness, lo, hi)
    mean = grey(x).mean()
    x = np.clip(mean + (x - mean) * contrast, lo, hi)
    g = grey(x)
    return np.clip(g + (x - g) * saturation, lo, hi)


# --------------------------------------------------------------------------------------------
# Labels (mixing strategies).
# --------------------------------------------------------------------------------------------


def one_hot(indices: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """``(B, K)`` float64 one-hot rows."""
    out = np.zeros((len(indices), num_classes), dtype=np.float64)
    for b, k in enumerate(np.asarray(indices).tolist()):
        out[b, k] = 1.0
    return out


def smooth_labels(labels: np.ndarray, smoothing: float) -> np.ndarray:
    """Label smoothing of ``(B, K)`` soft labels: ``y (1 - s) + s / K``."""
    labels = np.asarray(labels, dtype=np.float64)
    return labels * (1 - smoothing) + smoothing / labels.shape[1]


def mix_labels(labels: np.ndarray, partner, partner_weight) -> np.ndarray:
    """Row ``b`` is ``(1 - w_b) y_b + w_b y_partner[b]``, row by row (float64)."""
    labels = np.asarray(labels, dtype=np.float64)
    out = np.empty_like(labels)
    for b, (p, w) in enumerate(zip(np.asarray(partner).tolist(), np.asarray(partner_weight).tolist(), strict=True)):
        out[b] = (1 - w) * labels[b] + w * labels[p]
    return out
