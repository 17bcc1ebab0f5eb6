"""Framework adapters: one interface over the torch transforms and the Keras layers, so that the
conventions both frameworks keep are written once (``test_conventions.py``) and run on both.

An adapter builds the class of a registry case (:mod:`registry_cases`), makes images in its
framework's layout from a framework-free description (``(B, C, H, W)`` shapes, dtype names),
calls a transform the way its framework does (labels for the mixing ones), and gives everything
back as NumPy arrays in ``(B, C, H, W)`` order (bfloat16 as float32, which is exact), so that the
assertions are the same for both. Each adapter imports its framework on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from registry_cases import NUM_CLASSES, Case

__all__ = ["ADAPTERS", "DTYPES", "Adapter", "Result", "bits_differ", "make_images"]

#: The image dtypes every transform accepts, by name.
DTYPES = ("uint8", "float16", "bfloat16", "float32", "float64")


def make_images(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    """Random ``(B, C, H, W)`` images (float32 for bfloat16) whose values avoid the fills'
    constants (0, 1, 0.5 and their uint8 images), as NumPy."""
    rng = np.random.default_rng(seed)
    values = 0.1 + 0.8 * rng.random(shape)
    values = np.where(np.abs(values - 0.5) < 0.02, values + 0.05, values)
    if dtype == "uint8":
        return np.round(values * 255).astype(np.uint8)
    return values.astype(np.float32 if dtype == "bfloat16" else dtype)


def bits_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per image of two ``(B, ...)`` arrays of one dtype: whether any bit differs (NaN equals NaN)."""
    kind = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return (np.ascontiguousarray(a).view(kind) != np.ascontiguousarray(b).view(kind)).reshape(len(a), -1).any(1)


def one_hot(batch: int, smoothing: float = 0.0) -> np.ndarray:
    """The (smoothed) one-hot rows of the labels :class:`Adapter` passes, ``arange(B) % K``."""
    rows = np.eye(NUM_CLASSES)[np.arange(batch) % NUM_CLASSES]
    return rows * (1 - smoothing) + smoothing / NUM_CLASSES


@dataclass
class Result:
    """One call, as NumPy: ``images`` ``(B, C, H, W)`` and their framework ``dtype`` name, ``soft``
    labels (mixing) and the boolean ``selected`` ``(B,)`` (None when the call was made without
    capturing parameters)."""

    images: np.ndarray
    dtype: str
    soft: np.ndarray | None = None
    selected: np.ndarray | None = None


class Adapter:
    """The interface; see the module docstring."""

    name: str

    def build(self, case: Case, seed: int | None = None, **options: Any) -> Any:
        """The framework's transform of ``case`` seeded with ``seed`` (None: unseeded)."""
        raise NotImplementedError

    def images(self, array: np.ndarray, dtype: str) -> Any:
        """``(B, C, H, W)`` or ``(C, H, W)`` NumPy images as the framework's images, in its layout."""
        raise NotImplementedError

    def call(self, case: Case, transform: Any, images: Any) -> Result:
        """A plain call (labels ``arange(B) % K`` for a mixing case)."""
        raise NotImplementedError

    def run(self, case: Case, transform: Any, images: Any) -> Result:
        """A call that also captures the selection it drew."""
        raise NotImplementedError


class TorchAdapter(Adapter):
    name = "torch"

    def build(self, case: Case, seed: int | None = None, **options: Any) -> Any:
        import torch

        generator = None if seed is None else torch.Generator().manual_seed(seed)
        return case.build("torch", generator=generator, **options)

    def images(self, array: np.ndarray, dtype: str) -> Any:
        import torch

        return torch.from_numpy(np.array(array)).to(getattr(torch, dtype))

    def _numpy(self, x: Any) -> np.ndarray:
        import torch

        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()

    def _dtype(self, x: Any) -> str:
        return str(x.dtype).removeprefix("torch.")

    def _labels(self, images: Any) -> Any:
        import torch

        return torch.arange(images.shape[0]) % NUM_CLASSES

    def call(self, case: Case, transform: Any, images: Any) -> Result:
        if case.mixes:
            out, soft = transform(images, self._labels(images))
            return Result(self._numpy(out), self._dtype(out), soft.double().numpy())
        out = transform(images)
        out = out[0] if isinstance(out, tuple) else out
        return Result(self._numpy(out), self._dtype(out))

    def run(self, case: Case, transform: Any, images: Any) -> Result:
        from helpers import run_mixing, run_with_params

        if case.mixes:
            out, soft, params = run_mixing(transform, images, self._labels(images))
            return Result(self._numpy(out), self._dtype(out), soft.double().numpy(), params["selected"].numpy())
        out, params = run_with_params(transform, images)
        selected = params["selected"].numpy() if params else np.zeros(0, bool)
        return Result(self._numpy(out), self._dtype(out), None, selected)


class KerasAdapter(Adapter):
    name = "keras"

    def build(self, case: Case, seed: int | None = None, **options: Any) -> Any:
        return case.build("keras", seed=seed, data_format="channels_first", **options)

    def images(self, array: np.ndarray, dtype: str) -> Any:
        import keras

        return keras.ops.cast(keras.ops.convert_to_tensor(np.array(array)), dtype)

    def _numpy(self, x: Any) -> np.ndarray:
        import keras

        if keras.backend.standardize_dtype(x.dtype) == "bfloat16":
            x = keras.ops.cast(x, "float32")
        return np.asarray(keras.ops.convert_to_numpy(x))

    def _dtype(self, x: Any) -> str:
        import keras

        return keras.backend.standardize_dtype(x.dtype)

    def _labels(self, images: Any) -> np.ndarray:
        return np.arange(images.shape[0]) % NUM_CLASSES

    def call(self, case: Case, transform: Any, images: Any) -> Result:
        if case.mixes:
            out, soft = transform((images, self._labels(images)))
            return Result(self._numpy(out), self._dtype(out), self._numpy(soft).astype(np.float64))
        out = transform(images)
        out = out[0] if isinstance(out, tuple) else out
        return Result(self._numpy(out), self._dtype(out))

    def run(self, case: Case, transform: Any, images: Any) -> Result:
        if case.mixes:
            labels = self._labels(images)
            t = transform.get_random_transformation((images, labels))
            out = transform.transform_images(images, t)
            soft = transform.transform_labels(labels, t)
            selected = self._numpy(t["selected"])
            return Result(self._numpy(out), self._dtype(out), self._numpy(soft).astype(np.float64), selected)
        t = transform.get_random_transformation(images)
        out = transform.transform_images(images, t)
        selected = self._numpy(t["selected"]) if t is not None else np.zeros(0, bool)
        return Result(self._numpy(out), self._dtype(out), None, selected)


#: The adapters, by framework name (the registry's framework names).
ADAPTERS: dict[str, Adapter] = {"torch": TorchAdapter(), "keras": KerasAdapter()}
