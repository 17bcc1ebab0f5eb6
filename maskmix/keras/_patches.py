"""Building blocks of the Keras strategies that move or resample pixels: CutBlur, Cut-Thumbnail,
CutPaste and CutSwap.

The Keras twin of :mod:`maskmix.torch._patches`:

* :func:`gather_pixels` / :func:`move_pixels` move pixels within each image in **one gather**
  over the flattened pixels, whose index is shared by the channels (channels-last: one row
  gather of a ``(B H W, C)`` view; channels-first: one ``take_along_axis`` whose ``(B, 1, H W)``
  index broadcasts over the channels).
* :func:`resample_matrix` builds per-image separable resampling matrices that reproduce
  ``torch.nn.functional.interpolate`` for a different output size per image, and
  :func:`resample` applies one along an image axis with a batched ``einsum``;
  :func:`axis_resampling` gives a layer the matrices of one axis, read from a table built once on
  the host where it is small.

Every function takes ``ops``, the backend namespace to compute with (a layer's ``self.backend``,
see :mod:`maskmix.keras._sampling`). Nothing here reads tensor values back to the host, loops
over the batch or builds data-dependent shapes: the functions run under
``tf.function(jit_compile=True)``, inside ``tf.data`` with an unknown batch size, and on the
TensorFlow, torch and JAX backends. Integer arguments are int32 tensors (or Python ints).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import numpy as np

from . import _sampling, _seeds

__all__ = ["axis_resampling", "gather_pixels", "move_pixels", "nearest_source", "resample", "resample_matrix"]

Ops = Any
Tensor = Any


def gather_pixels(ops: Ops, source: Tensor, index: Tensor, height: int, width: int, *,
                  channels_first: bool) -> Tensor:
    """``out[b, p] = source[b, index[b, p]]`` for every channel, over flattened pixels.

    ``source`` is a rank-4 batch ``(B, h, w, C)`` (``(B, C, h, w)`` with ``channels_first``) of any
    spatial size; ``index`` is an int ``(B, height, width)`` tensor of flat source positions
    ``y * w + x`` (each in ``[0, h w)``). Returns the ``(B, height, width, C)`` (or
    ``(B, C, height, width)``) batch read through the index, in ``source``'s dtype: values are
    copied bit for bit (NaN included). One gather; the index is never expanded over the channels
    in the channels-last layout.
    """
    shape = ops.shape(source)
    if channels_first:
        channels, src_pixels = shape[1], shape[2] * shape[3]
        flat = ops.numpy.reshape(source, (-1, channels, src_pixels))
        idx = ops.numpy.reshape(ops.cast(index, "int32"), (-1, 1, height * width))
        out = ops.numpy.take_along_axis(flat, idx, axis=2)
        return ops.numpy.reshape(out, (-1, channels, height, width))
    channels, src_pixels = shape[3], shape[1] * shape[2]
    batch = ops.shape(index)[0]
    base = ops.numpy.reshape(ops.numpy.arange(batch, dtype="int32") * src_pixels, (-1, 1, 1))
    rows = ops.numpy.reshape(ops.cast(index, "int32") + base, (-1,))
    out = ops.numpy.take(ops.numpy.reshape(source, (-1, channels)), rows, axis=0)
    return ops.numpy.reshape(out, (-1, height, width, channels))


def move_pixels(ops: Ops, images: Tensor, offsets: Tensor, *, channels_first: bool) -> Tensor:
    """``out[b, p] = images[b, p + offsets[b, p]]`` over the flattened pixels ``p = y W + x``.

    ``offsets`` is an int ``(B, H, W)`` tensor of flat source offsets (0 keeps a pixel where it
    is; ``dy * W + dx`` reads the pixel ``dy`` rows below and ``dx`` columns to the right); they
    must keep every source inside the image. Pixels whose offset is 0 are copied bit for bit.
    """
    shape = ops.shape(images)
    height, width = (shape[2], shape[3]) if channels_first else (shape[1], shape[2])
    positions = ops.numpy.reshape(ops.numpy.arange(height * width, dtype="int32"), (1, height, width))
    return gather_pixels(ops, images, positions + ops.cast(offsets, "int32"), height, width,
                         channels_first=channels_first)


def nearest_source(ops: Ops, index: Tensor, in_size: Tensor | int, out_size: Tensor | int, *,
                   legacy: bool = False) -> Tensor:
    """The input sample that output sample ``index`` copies when a length ``in_size`` is resized
    to ``out_size`` with ``"nearest"`` (``mode="nearest-exact"``): ``min(floor((i + 0.5) n_in /
    n_out), n_in - 1)``, or with ``legacy`` ``"nearest_legacy"`` (``mode="nearest"``):
    ``min(floor(i n_in / n_out), n_in - 1)``; the scale and product in float32 like ATen so that
    ties fall the same way. Elementwise (broadcasting) over int32 tensors; the resampling
    matrices and the gathers that move segmentation masks (Cut-Thumbnail) share it."""
    np_ = ops.numpy
    scale = ops.cast(in_size, "float32") / ops.cast(out_size, "float32")
    position = ops.cast(index, "float32") if legacy else ops.cast(index, "float32") + 0.5
    source = ops.cast(np_.floor(position * scale), "int32")
    return np_.minimum(source, ops.cast(in_size, "int32") - 1)


def resample_matrix(ops: Ops, in_size: Tensor | int, out_size: Tensor | int, in_max: int, out_max: int,
                    method: str, dtype: str) -> Tensor:
    """``(B, out_max, in_max)`` matrices resampling a length ``in_size[b]`` to ``out_size[b]``.

    Row ``i < out_size[b]`` holds the weights of output sample ``i`` over the input samples
    ``j < in_size[b]``; rows and columns beyond an image's own sizes are zero, so a batch whose
    images have different sizes is handled by one padded batched product. Applied along both
    axes (``R_h X R_w^T``) the matrices reproduce ``torch.nn.functional.interpolate`` with
    ``size=(out_h, out_w)`` (up to floating-point summation order), exactly as
    :func:`maskmix.torch._patches.resample_matrix`:

    * ``"nearest"``: ``mode="nearest-exact"`` (pixel centres aligned, as PIL and TensorFlow;
      output ``i`` copies input ``min(floor((i + 0.5) n_in / n_out), n_in - 1)``, in float32
      like ATen so that ties fall the same way);
    * ``"nearest_legacy"``: ``mode="nearest"``, ``interpolate``'s default (output ``i`` copies
      input ``min(floor(i n_in / n_out), n_in - 1)``, in float32 like ATen; Cut-Thumbnail's
      official code);
    * ``"area"``: ``mode="area"`` (adaptive average pooling: output ``i`` averages the inputs
      ``floor(i n_in / n_out) <= j < ceil((i + 1) n_in / n_out)``);
    * ``"bilinear"``/``"bicubic"``: ``mode=method, antialias=True, align_corners=False`` (the
      PIL/torchvision resize: a triangle or Keys cubic (a = -0.5) filter widened by the scale
      when down-sampling, weights normalised at the borders).

    ``in_size`` and ``out_size`` are int32 tensors of shape ``(B,)`` (or ``(1,)``, or Python
    ints, broadcast over the batch). ``dtype`` is the weights' dtype (float32 or float64).
    """
    np_ = ops.numpy
    i = np_.reshape(np_.arange(out_max, dtype="int32"), (1, -1, 1))
    j = np_.reshape(np_.arange(in_max, dtype="int32"), (1, 1, -1))
    n_in = np_.reshape(ops.cast(in_size, "int32"), (-1, 1, 1))
    n_out = np_.reshape(ops.cast(out_size, "int32"), (-1, 1, 1))
    valid = np_.logical_and(i < n_out, j < n_in)
    zero = np_.zeros((), dtype=dtype)
    if method in ("nearest", "nearest_legacy"):
        weights = ops.cast(j == nearest_source(ops, i, n_in, n_out, legacy=method == "nearest_legacy"), dtype)
    elif method == "area":
        n_out_safe = np_.maximum(n_out, 1)
        start = np_.floor_divide(i * n_in, n_out_safe)
        end = np_.floor_divide((i + 1) * n_in + n_out - 1, n_out_safe)
        inside = np_.logical_and(j >= start, j < end)
        weights = ops.cast(inside, dtype) / ops.cast(np_.maximum(end - start, 1), dtype)
    elif method in ("bilinear", "bicubic"):
        support_base = 1.0 if method == "bilinear" else 2.0
        f_in = ops.cast(n_in, dtype)
        scale = f_in / ops.cast(np_.maximum(n_out, 1), dtype)
        center = scale * (ops.cast(i, dtype) + 0.5)
        upsampling = scale < 1.0
        one = np_.ones((), dtype=dtype)
        inv_scale = np_.where(upsampling, one, one / scale)
        support = np_.where(upsampling, support_base * one, support_base * scale)
        # trunc == floor here: negative lower bounds are clamped to 0 anyway.
        lowest = np_.maximum(np_.floor(center - support + 0.5), zero)
        beyond = np_.minimum(np_.floor(center + support + 0.5), f_in)
        position = ops.cast(j, dtype)
        x = np_.abs((position - center + 0.5) * inv_scale)
        if method == "bilinear":
            weights = np_.maximum(1.0 - x, zero)
        else:
            a = -0.5  # Keys' cubic convolution, as PIL and antialiased torch bicubic
            inner = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
            outer = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
            weights = np_.where(x < 1.0, inner, np_.where(x < 2.0, outer, zero))
        keep = np_.logical_and(np_.logical_and(position >= lowest, position < beyond), valid)
        weights = np_.where(keep, weights, zero)
        total = np_.sum(weights, axis=-1, keepdims=True)
        weights = weights / np_.where(total == 0, one, total)
    else:
        raise ValueError(f"resample_matrix: unknown method {method!r}")
    return np_.where(valid, weights, zero)


def resample(ops: Ops, images: Tensor, matrix: Tensor, axis: str, *, channels_first: bool) -> Tensor:
    """Resample a floating rank-4 batch along its ``"height"`` or ``"width"`` axis.

    ``matrix`` is ``(B, n_out, n_in)`` (one matrix per image) or ``(n_out, n_in)`` (one for the
    whole batch); the axis of length ``n_in`` becomes ``n_out``. One (batched) ``einsum``.
    """
    batched = len(matrix.shape) == 3
    m = "boi" if batched else "oi"
    if channels_first:
        spec = f"{m},bcij->bcoj" if axis == "height" else f"{m},bcji->bcjo"
    else:
        spec = f"{m},bijc->bojc" if axis == "height" else f"{m},bjic->bjoc"
    return _sampling.einsum(ops, spec, matrix, images)


#: :func:`resample_matrix`'s operations on NumPy arrays, to build its tables on the host with the
#: same code.
_NUMPY_OPS = SimpleNamespace(numpy=np, cast=lambda x, dtype: np.asarray(x).astype(dtype))

#: Largest table of matrices :func:`axis_resampling` keeps (bytes): it becomes a constant of every
#: call (a copy in eager mode, a graph constant when traced). 32x32 images need ~130 KiB. At most
#: 32 tables are kept (least recently used dropped): 64 MiB at worst, for many image sizes.
RESAMPLING_TABLE_BYTES = 2 << 20


@functools.lru_cache(maxsize=32)
def _resampling_table(size: int, low: int, high: int, shrink: bool, method: str, dtype: str) -> np.ndarray:
    sizes = np.arange(low, high + 1, dtype=np.int32)
    if shrink:
        table = resample_matrix(_NUMPY_OPS, size, sizes, size, high, method, dtype)
    else:
        table = resample_matrix(_NUMPY_OPS, sizes, size, high, size, method, dtype)
    if not _seeds.torch_compiling():  # Dynamo traces this NumPy code into its graph and has no setflags
        table.setflags(write=False)
    return table


def axis_resampling(ops: Ops, size: int, sizes: Tensor | None, bounds: tuple[int, int], *, shrink: bool,
                    method: str, dtype: str) -> Tensor:
    """The :func:`resample_matrix` matrices between a static length ``size`` and per-image lengths.

    ``sizes`` is an int32 ``(B,)`` tensor of lengths within ``bounds`` (both inclusive; None when
    they are equal). ``shrink`` resamples ``size`` to ``sizes`` (``(B, bounds[1], size)``
    matrices), otherwise ``sizes`` to ``size`` (``(B, size, bounds[1])``); with equal bounds one
    2-D matrix serves the batch. The matrices of every length in ``bounds`` are computed once on
    the host (cached per size, bounds, method and dtype) when their table holds at most
    :data:`RESAMPLING_TABLE_BYTES`, and each call gathers its images' rows of it: one operation
    where computing them takes about thirty (``resample_matrix``, used for larger tables).
    Weights built on the host may differ from the backend's in the last bit (normalising sums).
    """
    low, high = bounds
    count = high - low + 1
    if low == high or count * high * size * np.dtype(dtype).itemsize <= RESAMPLING_TABLE_BYTES:
        table = _resampling_table(size, low, high, shrink, method, dtype)
        if low == high:
            return ops.convert_to_tensor(table[0])
        return ops.numpy.take(ops.convert_to_tensor(table), ops.cast(sizes, "int32") - low, axis=0)
    if shrink:
        return resample_matrix(ops, size, sizes, size, high, method, dtype)
    return resample_matrix(ops, sizes, size, high, size, method, dtype)
