"""Framework adapters: one interface over the torch transforms and the Keras layers, so that the
conventions both frameworks keep are written once (``test_conventions.py``) and run on both.

An adapter builds the class of a registry case (:mod:`registry_cases`), makes images in its
framework's layout from a framework-free description (``(B, C, H, W)`` shapes, dtype names),
calls a transform the way its framework does (labels for the mixing ones), and gives everything
back as NumPy arrays in ``(B, C, H, W)`` order (bfloat16 as float32, which is exact), so that the
assertions are the same for both. Each adapter imports its framework on first use.

Beyond calls, an adapter says what differs in how a framework words and feeds things: the
unsupported image dtypes it can make (:attr:`Adapter.bad_dtypes`, :meth:`Adapter.filled`), how a
dtype is printed in a message (:meth:`Adapter.dtype_text`, ``torch.bool`` / ``bool``), how a shape
is (:meth:`Adapter.shape_text`), a transform's own message out of the framework's wrapping
(:meth:`Adapter.message`), labels of a given dtype (:meth:`Adapter.labels`), gradients
(:meth:`Adapter.gradient`), its layouts (:meth:`Adapter.layouts`: Keras also runs channels-last,
transposed back to ``(B, C, H, W)``), the images a user would pass (:meth:`Adapter.inputs`:
NumPy arrays for Keras), how many hypothesis examples its eager calls afford
(:attr:`Adapter.property_examples`) and how it makes the statistical tests' loops of many calls
(:meth:`Adapter.calls`, :meth:`Adapter.runs`: Keras calls one traced graph, ~1 ms a call where an
eager call costs 10-20 ms).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from registry_cases import NUM_CLASSES, Case

__all__ = ["ADAPTERS", "DTYPES", "Adapter", "KerasAdapter", "Result", "TorchAdapter", "bits_differ", "make_images",
           "one_hot"]

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
    labels (mixing, as float64) and their framework ``soft_dtype`` name, the boolean ``selected``
    ``(B,)`` and every drawn parameter that is a tensor in ``params`` (both None when the call
    was made without capturing parameters), and the ``flags`` of ``return_labels=True``."""

    images: np.ndarray
    dtype: str
    soft: np.ndarray | None = None
    selected: np.ndarray | None = None
    soft_dtype: str | None = None
    params: dict[str, np.ndarray] | None = None
    flags: np.ndarray | None = None


class Adapter:
    """The interface; see the module docstring."""

    name: str
    #: A test id for the layout (the framework name, or ``keras-channels_last``).
    layout: str
    #: Image dtypes the framework has but no transform accepts, by name.
    bad_dtypes: tuple[str, ...]
    #: Hypothesis examples per strategy in the property tests (Keras eager calls cost ~20 ms).
    property_examples: int

    def build(self, case: Case, seed: int | None = None, **options: Any) -> Any:
        """The framework's transform of ``case`` seeded with ``seed`` (None: unseeded)."""
        raise NotImplementedError

    def images(self, array: np.ndarray, dtype: str) -> Any:
        """``(B, C, H, W)`` or ``(C, H, W)`` NumPy images as the framework's images, in its layout."""
        raise NotImplementedError

    def inputs(self, array: np.ndarray, dtype: str) -> Any:
        """The images as a user hands them over (Keras: the NumPy array itself, in its layout)."""
        return self.images(array, dtype)

    def filled(self, shape: tuple[int, ...], dtype: str) -> Any:
        """Images of any dtype the framework has (``bad_dtypes`` included), in its layout."""
        raise NotImplementedError

    def labels(self, array: np.ndarray, dtype: str | None = None) -> Any:
        """NumPy labels as the framework's labels, cast to ``dtype`` (a name) if given."""
        raise NotImplementedError

    def numpy(self, x: Any) -> np.ndarray:
        """A NumPy copy of the framework's images or labels, in ``(B, C, H, W)`` order."""
        return np.array(self._numpy(x))

    def _numpy(self, x: Any) -> np.ndarray:
        raise NotImplementedError

    def dtype_text(self, dtype: str) -> str:
        """How the framework's messages print the dtype ``dtype``."""
        return dtype

    def shape_text(self, shape: tuple[int, ...]) -> str:
        """How the messages print the shape of ``(B, C, H, W)`` images, in the adapter's layout."""
        return str(tuple(shape))

    def message(self, error: BaseException) -> str:
        """The transform's own message, out of whatever the framework wraps it in."""
        return str(error)

    def call(self, case: Case, transform: Any, images: Any, labels: Any = None) -> Result:
        """A plain call (labels ``arange(B) % K`` for a mixing case unless given)."""
        raise NotImplementedError

    def run(self, case: Case, transform: Any, images: Any, labels: Any = None) -> Result:
        """A call that also captures the parameters it drew (``selected``, ``partner``...)."""
        raise NotImplementedError

    def calls(self, case: Case, transform: Any, images: Any, count: int) -> list[Result]:
        """``count`` successive :meth:`call` results of one transform on the same inputs (the
        statistical tests' loops; Keras makes them through one traced graph)."""
        return [self.call(case, transform, images) for _ in range(count)]

    def runs(self, case: Case, transform: Any, images: Any, count: int) -> list[Result]:
        """``count`` successive :meth:`run` results of one transform on the same inputs."""
        return [self.run(case, transform, images) for _ in range(count)]

    def gradient(self, case: Case, transform: Any, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The output of a call on float32 ``array`` and the gradient of its sum, as NumPy."""
        raise NotImplementedError

    def layouts(self) -> list[Adapter]:
        """This adapter and one per other image layout of the framework."""
        return [self]


class TorchAdapter(Adapter):
    name = "torch"
    layout = "torch"
    bad_dtypes = ("bool", "int8", "int16", "int32", "int64", "uint16", "complex64", "complex128", "float8_e4m3fn")
    property_examples = 40

    def build(self, case: Case, seed: int | None = None, **options: Any) -> Any:
        import torch

        generator = None if seed is None else torch.Generator().manual_seed(seed)
        return case.build("torch", generator=generator, **options)

    def images(self, array: np.ndarray, dtype: str) -> Any:
        import torch

        return torch.from_numpy(np.array(array)).to(getattr(torch, dtype))

    def filled(self, shape: tuple[int, ...], dtype: str) -> Any:
        import torch

        return torch.zeros(shape).to(getattr(torch, dtype))

    def labels(self, array: np.ndarray, dtype: str | None = None) -> Any:
        import torch

        labels = torch.from_numpy(np.array(array))
        return labels if dtype is None else labels.to(getattr(torch, dtype))

    def dtype_text(self, dtype: str) -> str:
        return f"torch.{dtype}"

    def _numpy(self, x: Any) -> np.ndarray:
        import torch

        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()

    def _dtype(self, x: Any) -> str:
        return str(x.dtype).removeprefix("torch.")

    def _labels(self, images: Any) -> Any:
        import torch

        return torch.arange(images.shape[0]) % NUM_CLASSES

    def _params(self, params: dict) -> dict[str, np.ndarray]:
        import torch

        return {key: self._numpy(value) for key, value in params.items() if isinstance(value, torch.Tensor)}

    def call(self, case: Case, transform: Any, images: Any, labels: Any = None) -> Result:
        if case.mixes:
            out, soft = transform(images, self._labels(images) if labels is None else labels)
            return Result(self._numpy(out), self._dtype(out), soft.double().numpy(), soft_dtype=self._dtype(soft))
        out = transform(images)
        flags = None
        if isinstance(out, tuple):
            out, flags = out[0], self._numpy(out[1])
        return Result(self._numpy(out), self._dtype(out), flags=flags)

    def run(self, case: Case, transform: Any, images: Any, labels: Any = None) -> Result:
        from helpers import run_mixing, run_with_params

        if case.mixes:
            out, soft, params = run_mixing(transform, images, self._labels(images) if labels is None else labels)
            return Result(self._numpy(out), self._dtype(out), soft.double().numpy(), params["selected"].numpy(),
                          self._dtype(soft), self._params(params))
        out, params = run_with_params(transform, images)
        selected = params["selected"].numpy() if params else np.zeros(0, bool)
        return Result(self._numpy(out), self._dtype(out), None, selected, params=self._params(params))

    def gradient(self, case: Case, transform: Any, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.images(array, "float32").requires_grad_()
        out = transform(x, self._labels(x)) if case.mixes else transform(x)
        out = out[0] if isinstance(out, tuple) else out
        if not out.requires_grad or out.grad_fn is None:
            raise AssertionError("the output is not in the autograd graph of the input")
        out.sum().backward()
        if x.grad is None:
            raise AssertionError("no gradient reached the input")
        return out.detach().numpy(), x.grad.numpy()


class KerasAdapter(Adapter):
    """The Keras layers, ``channels_first`` (or ``channels_last``: images are transposed on the
    way in and back on the way out, so that the tests still see ``(B, C, H, W)``)."""

    name = "keras"
    bad_dtypes = ("bool", "int8", "int16", "int32", "int64", "uint16", "uint32", "complex64", "complex128",
                  "float8_e4m3fn", "string")
    property_examples = 25

    def __init__(self, data_format: str = "channels_first") -> None:
        self.data_format = data_format
        self.layout = "keras" if data_format == "channels_first" else f"keras-{data_format}"

    def _to_layout(self, array: Any) -> Any:
        if self.data_format == "channels_last" and np.ndim(array) >= 3:
            return np.ascontiguousarray(np.moveaxis(array, -3, -1))
        return array

    def build(self, case: Case, seed: int | None = None, **options: Any) -> Any:
        return case.build("keras", seed=seed, **{"data_format": self.data_format, **options})

    def images(self, array: np.ndarray, dtype: str) -> Any:
        import keras

        return keras.ops.cast(keras.ops.convert_to_tensor(np.array(self._to_layout(array))), dtype)

    def inputs(self, array: np.ndarray, dtype: str) -> Any:
        if dtype == "bfloat16":  # NumPy has no bfloat16
            return self.images(array, dtype)
        return np.array(self._to_layout(array))

    def filled(self, shape: tuple[int, ...], dtype: str) -> Any:
        import tensorflow as tf

        shape = self._to_layout(np.zeros(shape, bool)).shape
        return tf.fill(shape, "a") if dtype == "string" else tf.cast(tf.zeros(shape), dtype)

    def labels(self, array: np.ndarray, dtype: str | None = None) -> Any:
        import keras

        return array if dtype is None else keras.ops.cast(array, dtype)

    def shape_text(self, shape: tuple[int, ...]) -> str:
        return str(tuple(self._to_layout(np.zeros(shape, bool)).shape))

    def message(self, error: BaseException) -> str:
        # Keras wraps a layer's exception: "Exception encountered when calling X.call().\n\n"
        # then the message in bold, then the arguments received.
        wrapped = re.search(r"\x1b\[1m(.*?)\x1b\[0m", str(error), re.DOTALL)
        return wrapped.group(1) if wrapped else str(error)

    def layouts(self) -> list[Adapter]:
        return [self, KerasAdapter("channels_last")]

    def _numpy(self, x: Any) -> np.ndarray:
        import keras

        if keras.backend.standardize_dtype(x.dtype) == "bfloat16":
            x = keras.ops.cast(x, "float32")
        out = np.asarray(keras.ops.convert_to_numpy(x))
        if self.data_format == "channels_last" and out.ndim >= 3:
            return np.moveaxis(out, -1, -3)
        return out

    def _dtype(self, x: Any) -> str:
        import keras

        return keras.backend.standardize_dtype(x.dtype)

    def _labels(self, images: Any) -> np.ndarray:
        return np.arange(images.shape[0]) % NUM_CLASSES

    def _params(self, params: dict | None) -> dict[str, np.ndarray]:
        return {key: self._numpy(value) for key, value in (params or {}).items() if hasattr(value, "dtype")}

    def call(self, case: Case, transform: Any, images: Any, labels: Any = None) -> Result:
        if case.mixes:
            out, soft = transform((images, self._labels(images) if labels is None else labels))
            return Result(self._numpy(out), self._dtype(out), self._numpy(soft).astype(np.float64),
                          soft_dtype=self._dtype(soft))
        out = transform(images)
        flags = None
        if isinstance(out, tuple):
            out, flags = out[0], self._numpy(out[1])
        return Result(self._numpy(out), self._dtype(out), flags=flags)

    def run(self, case: Case, transform: Any, images: Any, labels: Any = None) -> Result:
        if case.mixes:
            labels = self._labels(images) if labels is None else labels
        return self._run_result(case, *_call_halves(case, transform, images, labels))

    def _run_result(self, case: Case, out: Any, soft: Any, t: dict | None) -> Result:
        if case.mixes:
            return Result(self._numpy(out), self._dtype(out), self._numpy(soft).astype(np.float64),
                          self._numpy(t["selected"]), self._dtype(soft), self._params(t))
        selected = self._numpy(t["selected"]) if t is not None else np.zeros(0, bool)
        return Result(self._numpy(out), self._dtype(out), None, selected, params=self._params(t))

    def calls(self, case: Case, transform: Any, images: Any, count: int) -> list[Result]:
        from keras_helpers import in_graph

        graph = in_graph(transform)
        return [self.call(case, graph, images) for _ in range(count)]

    def runs(self, case: Case, transform: Any, images: Any, count: int) -> list[Result]:
        import tensorflow as tf

        labels = self._labels(images) if case.mixes else None
        graph = tf.function(lambda x, y: _call_halves(case, transform, x, y))  # see keras_helpers.in_graph
        return [self._run_result(case, *graph(images, labels)) for _ in range(count)]

    def gradient(self, case: Case, transform: Any, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import tensorflow as tf

        x = tf.Variable(self._to_layout(np.asarray(array, np.float32)))
        with tf.GradientTape() as tape:
            out = transform((x, self._labels(x))) if case.mixes else transform(x)
            out = out[0] if isinstance(out, tuple) else out
            total = tf.reduce_sum(out)
        grad = tape.gradient(total, x)
        if grad is None:
            raise AssertionError("no gradient reached the input")
        return self._numpy(out), self._numpy(grad)


def _call_halves(case: Case, transform: Any, images: Any, labels: Any) -> tuple[Any, Any, dict | None]:
    """A Keras layer's call made of its halves, keeping the drawn parameters: ``(images, soft
    labels or None, parameters)``."""
    t = transform.get_random_transformation((images, labels) if case.mixes else images)
    out = transform.transform_images(images, t)
    return out, transform.transform_labels(labels, t) if case.mixes else None, t


#: The adapters, by framework name (the registry's framework names).
ADAPTERS: dict[str, Adapter] = {"torch": TorchAdapter(), "keras": KerasAdapter()}
