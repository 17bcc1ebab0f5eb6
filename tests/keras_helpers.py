"""NumPy helpers for the Keras test modules: image factories, parameter capture and reference masks.

The reference masks are built with plain Python loops and slicing from the sampled parameters,
independently of the layers' vectorised mask builders, so that pixel-accounting tests compare two
different computations. Nothing here imports torch (only Triton, when installed: see below).
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# TensorFlow and Triton (which torch loads lazily: torch._dynamo, torchvision) each bundle LLVM
# and register the same LLVM command-line options: whichever is loaded second aborts the whole
# process ("Option 'bitcode-mdindex-threshold' registered more than once!"). A pytest process that
# collects these Keras tests imports TensorFlow and would then crash in the torch tests; loading
# Triton first is safe. Every Keras test module imports this module before keras/tensorflow.
try:
    import triton  # noqa: F401
except ImportError:  # no triton (CPU-only torch, or no torch): nothing to conflict with
    pass

from typing import Any

import keras
import numpy as np

MASKING_DTYPES = ("uint8", "float16", "bfloat16", "float32", "float64")


def make_images(shape: tuple[int, ...], dtype: str = "float32", *, seed: int = 0,
                low: float = 0.1, high: float = 0.9) -> np.ndarray:
    """Random images whose values avoid the fills' constants (0, 1, 0.5 and their uint8 images).

    Returns a NumPy array (bfloat16 is returned as float32; cast with ``keras.ops.cast``).
    """
    rng = np.random.default_rng(seed)
    values = low + (high - low) * rng.random(shape)
    values = np.where(np.abs(values - 0.5) < 0.02, values + 0.05, values)
    if dtype == "uint8":
        return np.round(values * 255).astype(np.uint8)
    if dtype == "bfloat16":
        return values.astype(np.float32)
    return values.astype(dtype)


def to_tensor(array: np.ndarray, dtype: str) -> Any:
    return keras.ops.cast(keras.ops.convert_to_tensor(array), dtype)


def np_(x: Any) -> np.ndarray:
    """A NumPy copy of a tensor (bfloat16 as float32)."""
    if keras.backend.standardize_dtype(x.dtype) == "bfloat16":
        x = keras.ops.cast(x, "float32")
    return np.asarray(keras.ops.convert_to_numpy(x))


def params_np(params: dict) -> dict:
    return {k: np_(v) for k, v in params.items()}


def run_with_params(layer: Any, images: Any) -> tuple[np.ndarray, dict]:
    """``get_random_transformation`` then ``transform_images`` (``call``'s two halves)."""
    params = layer.get_random_transformation(images)
    return np_(layer.transform_images(images, params)), params_np(params)


def changed_pixels(before: np.ndarray, after: np.ndarray, channels_first: bool = False) -> np.ndarray:
    """``(B, H, W)`` mask of pixels where any channel differs."""
    return (np.asarray(before) != np.asarray(after)).any(axis=1 if channels_first else -1)


def reference_box_mask(top, left, height, width, size: tuple[int, int], active=None) -> np.ndarray:
    """``(B, H, W)`` mask of per-image boxes, built by slicing (``(B,)`` or ``(B, K)`` params)."""
    top, left, height, width = (np.asarray(t).reshape(len(t), -1) for t in (top, left, height, width))
    act = None if active is None else np.asarray(active).reshape(len(active), -1)
    mask = np.zeros((top.shape[0], *size), dtype=bool)
    for b in range(top.shape[0]):
        for k in range(top.shape[1]):
            if act is not None and not act[b, k]:
                continue
            mask[b, top[b, k] : top[b, k] + height[b, k], left[b, k] : left[b, k] + width[b, k]] = True
    return mask


def reference_hide_and_seek(rows, cols, hidden, size: tuple[int, int]) -> np.ndarray:
    """``(B, H, W)`` mask of hidden cells with boundaries ``floor(i * H / rows)``, by slicing."""
    height, width = size
    mask = np.zeros((len(rows), height, width), dtype=bool)
    for b in range(len(rows)):
        r, c = int(rows[b]), int(cols[b])
        for i in range(r):
            for j in range(c):
                if hidden[b, i, j]:
                    y0, y1 = (i * height) // r, ((i + 1) * height) // r
                    x0, x1 = (j * width) // c, ((j + 1) * width) // c
                    mask[b, y0:y1, x0:x1] = True
    return mask


def reference_grid_mask(params: dict, size: tuple[int, int]) -> np.ndarray:
    """``(B, H, W)`` GridMask mask by a per-pixel loop (rotation in float32, as the layer)."""
    height, width = size
    batch = len(params["unit"])
    mask = np.zeros((batch, height, width), dtype=bool)
    for b in range(batch):
        d, m = int(params["unit"][b]), int(params["masked"][b])
        oy, ox = int(params["offset_y"][b]), int(params["offset_x"][b])
        angle = params.get("angle")
        for y in range(height):
            for x in range(width):
                if angle is None:
                    u, v = x, y
                else:
                    t = np.float32(angle[b])
                    fy, fx = np.float32(y - (height - 1) / 2), np.float32(x - (width - 1) / 2)
                    u = math.floor(np.cos(t) * fx + np.sin(t) * fy)
                    v = math.floor(np.cos(t) * fy - np.sin(t) * fx)
                mask[b, y, x] = (v + oy) % d < m and (u + ox) % d < m
    return mask
