"""NumPy helpers for the Keras test modules: image factories, parameter capture, and the
framework-free references of ``tests/references.py`` under the names the Keras tests use.

The references are built with plain Python loops and slicing from the sampled parameters,
independently of the layers' vectorised code, so that pixel-accounting tests compare two different
computations; the torch tests use the same references (``helpers.py``). Nothing here imports torch
(only Triton, when installed: see below).
"""

from __future__ import annotations

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
import references

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


def in_graph(layer: Any) -> Any:
    """``layer`` called through one ``tf.function``, for the statistical tests' loops of many calls
    on inputs of one shape: it is traced once, then a call costs ~1 ms where an eager Keras call
    costs 10-20 ms. The graph runs the layer's own code and advances its seed generator's state (a
    variable) at every call, so successive calls draw new numbers: the eager calls' numbers
    (``test_keras_determinism``: the same selections and integer draws, float draws within ulps,
    bit-identical outputs with Grappler's rewrites off)."""
    import tensorflow as tf

    return tf.function(layer)


def run_with_params(layer: Any, images: Any) -> tuple[np.ndarray, dict]:
    """``get_random_transformation`` then ``transform_images`` (``call``'s two halves)."""
    params = layer.get_random_transformation(images)
    return np_(layer.transform_images(images, params)), params_np(params)


def changed_pixels(before: np.ndarray, after: np.ndarray, channels_first: bool = False) -> np.ndarray:
    """``(B, H, W)`` mask of pixels where any channel differs."""
    return (np.asarray(before) != np.asarray(after)).any(axis=1 if channels_first else -1)


#: ``(B, H, W)`` mask of per-image boxes, built by slicing (``(B,)`` or ``(B, K)`` params).
reference_box_mask = references.box_mask
#: ``(B, H, W)`` mask of hidden cells with boundaries ``floor(i * H / rows)``, by slicing.
reference_hide_and_seek = references.hide_and_seek_mask


def reference_grid_mask(params: dict, size: tuple[int, int]) -> np.ndarray:
    """``(B, H, W)`` GridMask region of a layer's parameters (:func:`references.grid_mask`)."""
    region, _ = references.grid_mask(params["unit"], params["masked"], params["offset_y"], params["offset_x"], size,
                                     params.get("angle"))
    return region


def box_slices(p: dict, b: int, prefix: str = "", suffix: str = "") -> tuple[slice, slice]:
    """Image ``b``'s box ``(rows, cols)`` from ``{prefix}top{suffix}``, ``{prefix}left{suffix}``,
    ``height`` and ``width``."""
    top, left = int(p[f"{prefix}top{suffix}"][b]), int(p[f"{prefix}left{suffix}"][b])
    return slice(top, top + int(p["height"][b])), slice(left, left + int(p["width"][b]))


def outside(shape: tuple[int, ...], *boxes: tuple[slice, slice]) -> np.ndarray:
    """``(H, W)`` mask of the pixels outside every box."""
    keep = np.ones(shape[:2], bool)
    for rows, cols in boxes:
        keep[rows, cols] = False
    return keep


#: Image size and class count of the Keras mixing tests.
MIXING_SIZE = (12, 10)
MIXING_CLASSES = 5


def one_hot(y, k: int = MIXING_CLASSES) -> np.ndarray:
    """float32 one-hot rows (the labels the Keras mixing tests feed the layers)."""
    return np.eye(k, dtype=np.float32)[y]


def mixing_batch(b: int = 16, dtype: str = "float32", channels_first: bool = False, seed: int = 0):
    """``(images, class indices)`` of the Keras mixing tests: ``MIXING_SIZE`` RGB images, labels ``arange(b) % 5``."""
    shape = (b, 3, *MIXING_SIZE) if channels_first else (b, *MIXING_SIZE, 3)
    x = to_tensor(make_images(shape, dtype, seed=seed), dtype)
    y = np.arange(b) % MIXING_CLASSES
    return x, y


def run_mixing_layer(layer: Any, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray, dict]:
    """Draw the parameters, then mix images and labels with them (what ``call`` does)."""
    t = layer.get_random_transformation(x)
    out = layer.transform_images(x, t)
    soft = layer.transform_labels(y, t, batch_size=x.shape[0])
    return np_(out), np_(soft), params_np(t)
