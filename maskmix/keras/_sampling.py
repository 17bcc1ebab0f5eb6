"""Per-image random sampling and region-mask building blocks, shared by every Keras strategy.

The Keras twin of :mod:`maskmix.torch._sampling`: the same distributions, drawn one value per
image (or per image and patch) as tensors, without a Python loop, ``map_fn`` or
``vectorized_map`` over the batch and without data-dependent shapes, so that every function runs
under ``tf.function(jit_compile=True)`` (XLA), inside a ``tf.data`` pipeline, and on the torch and
JAX backends.

Every function takes ``ops``, the backend namespace to compute with: a layer passes its
``self.backend`` (a Keras ``DynamicBackend``), which is the active Keras backend, switched to
TensorFlow while the layer runs inside a ``tf.data`` graph whatever the global backend (see
:class:`maskmix.keras.MaskMixLayer`). ``ops.numpy.*``, ``ops.random.*`` and ``ops.cast`` are the
functions ``keras.ops``/``keras.random`` call for concrete tensors. ``seed`` is a
``keras.random.SeedGenerator`` (a layer passes the stream of seeds of its call,
:class:`maskmix.keras._seeds.CallSeeds`) or an int.

``batch_size`` may be a Python int or, in a TensorFlow graph with an unknown batch dimension (the
last partial batch of a ``tf.data`` pipeline), a scalar int32 tensor. Integer results are int32.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras

from maskmix.geometry import (
    ATTEMPTS,
    GAMMA_PROPOSALS,
    TINY_BETA_ALPHA,
    gamma_proposal_constants,
    log_uniform_bounds,
    sampling_units,
)
from maskmix.params import COUNT_MARGIN, num_selected

__all__ = [
    "ATTEMPTS",
    "GAMMA_PROPOSALS",
    "RectanglePatches",
    "beta",
    "box_mask",
    "box_mask_of",
    "einsum",
    "first_fitting",
    "first_true",
    "int_maximum",
    "int_minimum",
    "integers_from",
    "log_uniform",
    "paper_rectangles",
    "pick",
    "place_inside",
    "randint",
    "randints",
    "random_boxes",
    "random_rectangles",
    "range_mask",
    "rectangle_sizes",
    "rounded_within",
    "select_images",
    "select_units",
    "spread",
    "take_last",
    "uniform",
    "uniform_closed",
    "uniforms",
    "unit_count",
    "unit_index",
    "where",
]

Ops = Any
Seed = Any
Tensor = Any
Size = Sequence[Any]


def where(ops: Ops, condition: Tensor, x1: Any, x2: Any) -> Tensor:
    """``ops.numpy.where(condition, x1, x2)``, in the branches' own dtype where they share one.

    Inside ``tf.data`` (or a ``tf.function``) under another global backend (JAX, torch), a layer
    computes with TensorFlow's Keras ops, whose dtype promotion narrows 64-bit types as the
    global backend would (Keras' ``result_type``: float64 to float32, int64 to int32): float64
    images, int64 masks and float64 labels came back narrowed, the unselected images' pixels
    rounded. There the selection is TensorFlow's own ``where``, on branches of one dtype (a Python
    number takes the other branch's), which is what TensorFlow's global backend gives.
    """
    if not _narrowing_tensorflow(ops):
        return ops.numpy.where(condition, x1, x2)
    import tensorflow as tf

    scalars = (bool, int, float)
    dtypes = [tf.convert_to_tensor(x).dtype for x in (x1, x2) if not isinstance(x, scalars)]
    if not dtypes:  # two Python numbers: nothing to narrow
        return ops.numpy.where(condition, x1, x2)
    dtype = _unnarrowed(dtypes)
    return tf.where(tf.cast(condition, tf.bool), tf.cast(x1, dtype), tf.cast(x2, dtype))


def int_minimum(ops: Ops, a: int | Tensor, b: int | Tensor) -> int | Tensor:
    """``min(a, b)`` of integers that are Python ints or int32 tensors (sizes, counts): a Python
    int for two Python ints, an int32 tensor otherwise.

    ``ops.numpy.minimum`` of two Python ints makes a tensor whose dtype follows
    ``keras.config.floatx()`` (int64 under ``"float64"``), which TensorFlow's comparisons and
    arithmetic with the int32 tensors it meets next refuse.
    """
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    return ops.numpy.minimum(ops.cast(a, "int32"), ops.cast(b, "int32"))


def int_maximum(ops: Ops, a: int | Tensor, b: int | Tensor) -> int | Tensor:
    """``max(a, b)``, as :func:`int_minimum` computes ``min``."""
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    return ops.numpy.maximum(ops.cast(a, "int32"), ops.cast(b, "int32"))


def einsum(ops: Ops, spec: str, *operands: Tensor) -> Tensor:
    """``ops.numpy.einsum``, in the operands' dtype where they share one (see :func:`where`)."""
    if not _narrowing_tensorflow(ops):
        return ops.numpy.einsum(spec, *operands)
    import tensorflow as tf

    tensors = [tf.convert_to_tensor(x) for x in operands]
    dtype = _unnarrowed([t.dtype for t in tensors])
    return tf.einsum(spec, *(tf.cast(t, dtype) for t in tensors))


def _unnarrowed(dtypes: Sequence[Any]) -> Any:
    """The TensorFlow dtype Keras' promotion gives ``dtypes`` under TensorFlow's global backend:
    its ``result_type``, with a 64-bit type it narrowed (float64 to float32, int64 to int32)
    put back."""
    import tensorflow as tf

    names = [keras.backend.standardize_dtype(d) for d in dtypes]
    promoted = keras.backend.result_type(*names)
    for wide, narrow in (("float64", "float32"), ("int64", "int32"), ("uint64", "uint32")):
        if promoted == narrow and wide in names:
            promoted = wide
    return tf.as_dtype(promoted)


def _narrowing_tensorflow(ops: Ops) -> bool:
    """Whether ``ops`` are TensorFlow's under another global backend, whose promotion narrows
    64-bit dtypes (see :func:`where`)."""
    return getattr(ops, "name", None) == "tensorflow" and keras.config.backend() != "tensorflow"


def uniform(ops: Ops, low: float | Tensor, high: float | Tensor, size: Size, seed: Seed) -> Tensor:
    """Float32 samples uniform in ``[low, high)``; ``low``/``high`` may be broadcastable tensors."""
    return _scaled(uniforms(ops, 1, size, seed)[0], low, high)


def uniforms(ops: Ops, count: int, size: Size, seed: Seed) -> tuple[Tensor, ...]:
    """``count`` independent float32 tensors of shape ``size``, uniform in ``[0, 1)``, from one draw.

    Each random call costs the backends far more than the arithmetic around it (a seed and a few
    kernels: about half a millisecond in eager TensorFlow), so the values a strategy needs
    together (a box's row and column, a rectangle's area and aspect) come from one call.
    """
    if count == 1:
        return (ops.random.uniform(tuple(size), 0.0, 1.0, dtype="float32", seed=seed),)
    drawn = ops.random.uniform((count, *size), 0.0, 1.0, dtype="float32", seed=seed)
    return tuple(ops.core.unstack(drawn, count, axis=0))


def index_uniforms(ops: Ops, count: int, size: Size, seed: Seed) -> tuple[Tensor, ...]:
    """:func:`uniforms` for :func:`integers_from` over spans up to ``2**31`` (an index among a
    grid's positions): float64 where the backend keeps 64-bit values, else float32.

    Float32 uniforms take at most ``2**23`` values (TensorFlow's are its multiples of ``2**-23``),
    so ``floor(U * n)`` gave some of ``n`` positions one more chance than others (1.5 times as
    likely at ``n = 3.4e6``, a 2048 x 2048 image's corners) and none to a part of them beyond
    ``2**23``. JAX without ``jax_enable_x64`` has no float64: its draws stay float32 (documented).
    """
    name = getattr(ops, "name", keras.backend.backend())
    jax = sys.modules.get("jax")
    wide = name != "jax" or (jax is not None and bool(jax.config.jax_enable_x64))
    if not wide:
        return uniforms(ops, count, size, seed)
    drawn = ops.random.uniform((count, *size), 0.0, 1.0, dtype="float64", seed=seed)
    return tuple(ops.core.unstack(drawn, count, axis=0)) if count > 1 else (ops.numpy.reshape(drawn, tuple(size)),)


def _scaled(u: Tensor, low: float | Tensor, high: float | Tensor) -> Tensor:
    return low + (high - low) * u


def log_uniform(ops: Ops, low: float, high: float, size: Size, seed: Seed) -> Tensor:
    """Float32 samples whose logarithm is uniform in ``[log low, log high)``.

    Bounds are first clamped by :func:`maskmix.geometry.log_uniform_bounds`.
    """
    low, high = log_uniform_bounds(low, high)
    if low == high:
        return ops.numpy.full(tuple(size), low, dtype="float32")
    return _log_scaled(ops, uniforms(ops, 1, size, seed)[0], low, high)


def _log_scaled(ops: Ops, u: Tensor, low: float, high: float) -> Tensor:
    """``u`` (uniform in ``[0, 1)``) mapped to the log-uniform law on ``[low, high)`` (clamped by
    :func:`maskmix.geometry.log_uniform_bounds`)."""
    low, high = log_uniform_bounds(low, high)
    if low == high:
        return ops.numpy.full_like(u, low)
    return ops.numpy.exp(_scaled(u, math.log(low), math.log(high)))


def uniform_closed(ops: Ops, low: float, high: float, size: Size, seed: Seed) -> Tensor:
    """Float32 samples uniform in ``[low, high]``: ``low`` itself when the range is one value.

    ``low + (high - low) * U`` can round above ``high`` in float32; the result is clamped to
    ``high``, so a value drawn from a configured range never leaves it.
    """
    if low == high:
        return ops.numpy.full(tuple(size), low, dtype="float32")
    return ops.numpy.minimum(uniform(ops, low, high, size, seed), high)


def rounded_within(ops: Ops, values: Tensor, bounds: tuple[int, int], *, half_up: bool = False) -> Tensor:
    """Int32 ``round(values)`` clamped into ``bounds`` (both inclusive).

    The float-rounding clamp of the sizes drawn from a range: ``bounds`` are the sizes of the
    range's ends, computed in float64 on the host (:mod:`maskmix.geometry`); a size computed on
    the device from a value drawn in float32 may round one pixel past them, and the clamp only
    undoes that. ``half_up`` rounds halves up (``floor(x + 0.5)``) instead of to even.
    """
    rounded = ops.numpy.floor(values + 0.5) if half_up else ops.numpy.round(values)
    return ops.numpy.clip(ops.cast(rounded, "int32"), bounds[0], bounds[1])


def randint(ops: Ops, low: int | Tensor, high: int | Tensor, size: Size, seed: Seed) -> Tensor:
    """Int32 samples uniform over ``{low, ..., high}`` (both inclusive), per-element bounds allowed.

    ``keras.random.randint`` takes one pair of bounds for the whole tensor; drawing
    ``low + floor(U * (high - low + 1))`` lets every image have its own bounds. The minimum with
    ``high`` guards the float rounding of ``U`` close to 1.
    """
    return integers_from(ops, uniforms(ops, 1, size, seed)[0], low, high)


def randints(ops: Ops, bounds: Sequence[tuple[int | Tensor, int | Tensor]], size: Size,
             seed: Seed) -> tuple[Tensor, ...]:
    """Independent :func:`randint` samples for each ``(low, high)`` of ``bounds``, from one draw
    (see :func:`uniforms`)."""
    draws = uniforms(ops, len(bounds), size, seed)
    return tuple(integers_from(ops, u, low, high) for u, (low, high) in zip(draws, bounds, strict=True))


def integers_from(ops: Ops, u: Tensor, low: int | Tensor, high: int | Tensor) -> Tensor:
    """:func:`randint`'s integers from uniform ``u`` already drawn (see :func:`uniforms`), in
    ``u``'s precision (float64 ``u`` from :func:`index_uniforms`: exact over an index among a grid's positions)."""
    # U * span is non-negative wherever the range is not empty, so the cast truncates as floor
    # would; an empty range (high < low) gives high either way, through the minimum.
    work = keras.backend.standardize_dtype(u.dtype)
    high_t = ops.cast(high, "int32")
    if isinstance(low, int) and low == 0:
        return ops.numpy.minimum(ops.cast(u * ops.cast(high_t + 1, work), "int32"), high_t)
    low_t = ops.cast(low, "int32")
    return ops.numpy.minimum(ops.cast(u * ops.cast(high_t - low_t + 1, work), "int32") + low_t, high_t)


def select_images(ops: Ops, batch_size: int | Tensor, ratio: float | Tensor, bernoulli: bool, seed: Seed) -> Tensor:
    """Boolean ``(B,)`` mask of the images to augment (design §Conventions, fraction control).

    ``bernoulli=False`` selects exactly ``num_selected(ratio, B)`` images (``round(ratio * B)``,
    halves up) at random positions: the images whose rank in a random permutation is below the
    count. ``bernoulli=True`` selects each image independently with probability ``ratio``. With a
    dynamic batch size the count is computed in the graph, in float64 like Python's. A scalar
    tensor ``ratio`` (a scheduled value read from a variable inside a compiled step) gives the
    same law with the count computed in the graph (in float32: JAX has no float64 by default;
    :data:`~maskmix.params.COUNT_MARGIN` keeps the count that of the ratio as written).
    """
    if bernoulli:
        return ops.random.uniform((batch_size,), 0.0, 1.0, dtype="float32", seed=seed) < ratio
    if not isinstance(ratio, (int, float)):
        scores = ops.random.uniform((batch_size,), 0.0, 1.0, dtype="float32", seed=seed)
        ranks = ops.cast(ops.numpy.argsort(ops.numpy.argsort(scores)), "float32")
        product = ops.cast(ratio, "float32") * ops.cast(batch_size, "float32") * (1.0 + COUNT_MARGIN)
        return ranks < ops.numpy.floor(product + 0.5)
    if isinstance(batch_size, int):
        count = num_selected(ratio, batch_size)
        if count >= batch_size:
            return ops.numpy.ones((batch_size,), dtype="bool")
        if count == 0:
            return ops.numpy.zeros((batch_size,), dtype="bool")
        count_t = ops.convert_to_tensor(count, dtype="int32")
    else:
        if ratio >= 1.0:
            return ops.numpy.ones((batch_size,), dtype="bool")
        if ratio <= 0.0:
            return ops.numpy.zeros((batch_size,), dtype="bool")
        count_t = ops.cast(ops.numpy.floor(ratio * (1.0 + COUNT_MARGIN) * ops.cast(batch_size, "float64") + 0.5),
                           "int32")
    scores = ops.random.uniform((batch_size,), 0.0, 1.0, dtype="float32", seed=seed)
    ranks = ops.numpy.argsort(ops.numpy.argsort(scores))
    return ops.cast(ranks, "int32") < count_t


def unit_count(ops: Ops, mode: str, batch_size: int | Tensor) -> int | Tensor:
    """How many draws a batch takes under the sampling ``mode`` (:func:`maskmix.geometry.sampling_units`;
    a scalar tensor for ``"pair"`` with an unknown batch size; ``"batch"`` always 1 then: spread
    over an empty batch it gives nothing)."""
    if isinstance(batch_size, int):
        return sampling_units(mode, batch_size)
    if mode == "batch":
        return 1
    if mode == "pair":
        return (batch_size + 1) // 2
    return batch_size


def unit_index(ops: Ops, mode: str, batch_size: int | Tensor) -> Tensor | None:
    """Int32 ``(B,)``: per image, the index of the draw it takes under the sampling ``mode``
    (design §Conventions, sampling modes), or None when each takes its own (``"image"``, or a
    batch of one). ``"batch"``: draw 0; ``"pair"``: images ``i`` and ``B - 1 - i`` take draw
    ``min(i, B - 1 - i)``."""
    if mode == "image" or (isinstance(batch_size, int) and sampling_units(mode, batch_size) == batch_size):
        return None
    index = ops.numpy.arange(batch_size, dtype="int32")
    if mode == "batch":
        return ops.numpy.zeros_like(index)
    return ops.numpy.minimum(index, ops.cast(batch_size, "int32") - 1 - index)


def spread(ops: Ops, params: Mapping[str, Any], index: Tensor | None) -> dict[str, Any]:
    """Per-draw parameters (leading dim: the draws) given to each image by ``index``
    (:func:`unit_index`); values without a leading dim are kept as they are."""
    if index is None:
        return dict(params)
    return {key: ops.numpy.take(value, index, axis=0) if len(getattr(value, "shape", ())) > 0 else value
            for key, value in params.items()}


def select_units(ops: Ops, mode: str, batch_size: int | Tensor, ratio: float | Tensor, bernoulli: bool,
                 index: Tensor | None, seed: Seed, *, pairs_only: bool = False) -> Tensor:
    """Boolean ``(B,)`` selection under the sampling ``mode``: ``"batch"`` with ``bernoulli`` one
    coin for the whole batch, without it the exact count over the images; ``"pair"`` one selection
    per pair (the exact count counting pairs; with ``pairs_only``, the mixing strategies', over the
    ``B // 2`` pairs: the middle image of an odd batch is never mixed). The twin of
    ``maskmix.torch._sampling.select_units``."""
    if index is None or (mode == "batch" and not bernoulli):
        return select_images(ops, batch_size, ratio, bernoulli, seed)
    if pairs_only and mode == "pair":
        pairs = select_images(ops, batch_size // 2, ratio, bernoulli, seed)
        padded = ops.numpy.concatenate([pairs, ops.numpy.zeros((1,), dtype="bool")], axis=0)
        return ops.numpy.take(padded, index, axis=0)
    units = unit_count(ops, mode, batch_size)
    return ops.numpy.take(select_images(ops, units, ratio, bernoulli, seed), index, axis=0)


def rectangle_sizes(ops: Ops, area_fraction: Tensor, aspect_ratio: Tensor, height: int, width: int
                    ) -> tuple[Tensor, Tensor]:
    """Int32 ``(h, w)`` of rectangles with ``h * w ~ area_fraction * H * W`` and ``h / w ~ aspect``.

    Sizes are rounded to the nearest pixel (half to even, as ``torch.round``) and at least 1; they
    are *not* clipped to the image.
    """
    target = area_fraction * ops.cast(height * width, "float32")
    # Clipped before the cast: an extreme aspect ratio's inf side must stay above H and W.
    top = ops.cast(height * width + 1, "float32")  # H and W may be tensors (unknown at trace time)

    def side(value: Tensor) -> Tensor:
        return ops.cast(ops.numpy.minimum(ops.numpy.maximum(ops.numpy.round(ops.numpy.sqrt(value)), 1.0), top),
                        "int32")

    return side(target * aspect_ratio), side(target / aspect_ratio)


def first_fitting(ops: Ops, h: Tensor, w: Tensor, height: int, width: int, *,
                  fits: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Pick, along the last axis of ``(..., attempts)`` candidates, the first that fits in the image.

    The vectorised form of the usual "try up to N times" loop: each image keeps its first candidate
    with ``h <= H`` and ``w <= W`` (or, when given, the first whose ``fits`` is True); an image whose
    candidates all fail keeps its first candidate clamped to the image.
    """
    if fits is None:
        fits = ops.numpy.logical_and(h <= height, w <= width)
    chosen = first_true(ops, fits, fallback=True)
    return (ops.numpy.minimum(take_last(ops, h, chosen), height),
            ops.numpy.minimum(take_last(ops, w, chosen), width))


def first_true(ops: Ops, flags: Tensor, *, fallback: bool) -> Tensor:
    """Boolean ``(..., n)`` mask of the first True of ``flags`` along the last axis.

    A row without a True gets its first position when ``fallback`` is set, nothing otherwise.
    Built from a cumulative count, not ``argmax`` + ``take_along_axis``: the backends expand the
    latter into dozens of small operations (2 ms a call in eager TensorFlow), and the mask
    selects several candidate tensors at once (:func:`take_last`).
    """
    counts = ops.numpy.cumsum(ops.cast(flags, "int32"), axis=-1)
    first = ops.numpy.logical_and(flags, counts == 1)
    if not fallback:
        return first
    at_start = ops.numpy.arange(ops.shape(flags)[-1], dtype="int32") == 0
    none = ops.numpy.logical_not(ops.numpy.any(flags, axis=-1, keepdims=True))
    return ops.numpy.logical_or(first, ops.numpy.logical_and(at_start, none))


def take_last(ops: Ops, values: Tensor, chosen: Tensor) -> Tensor:
    """``values[..., k]`` where ``chosen[..., k]`` is the one True of its row (zero where none).

    A masked sum over the last axis: exact, one value per row is kept and the others are zeros.
    """
    return ops.numpy.sum(where(ops, chosen, values, ops.numpy.zeros((), dtype=values.dtype)), axis=-1)


class RectanglePatches:
    """Mixin of the strategies whose rectangles :func:`random_rectangles` draws from the validated
    ``patch_area`` and ``patch_aspect_ratio`` ranges (CutBlur and its pairs, Random Erasing,
    CutPaste, CutSwap): it declares the two attributes and draws with them."""

    patch_area: tuple[float, float]
    patch_aspect_ratio: tuple[float, float]

    def draw_rectangles(self, ops: Ops, shape: Size, height: Any, width: Any, seed: Seed, *,
                        fits: Callable[[Tensor, Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """:func:`random_rectangles` with this strategy's ranges."""
        return random_rectangles(ops, shape, height, width, self.patch_area, self.patch_aspect_ratio, seed, fits=fits)

    def draw_boxes(self, ops: Ops, shape: Size, height: Any, width: Any, seed: Seed, *,
                   area_divisor: Tensor | None = None) -> dict[str, Tensor]:
        """:func:`random_boxes` with this strategy's ranges."""
        return random_boxes(ops, shape, height, width, self.patch_area, self.patch_aspect_ratio, seed,
                            area_divisor=area_divisor)


def random_rectangles(ops: Ops, shape: Size, height: int, width: int, patch_area: tuple[float, float],
                      patch_aspect_ratio: tuple[float, float], seed: Seed, *,
                      area_divisor: Tensor | None = None,
                      fits: Callable[[Tensor, Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Int32 ``(h, w)`` rectangle sizes of shape ``shape``, drawn as RandomErasing draws them.

    For each rectangle, :data:`ATTEMPTS` candidates are drawn at once: an area fraction ``a``
    uniform in ``patch_area`` (divided by ``area_divisor``, broadcast against ``shape``, when
    given) and an aspect ratio ``r = h / w`` log-uniform in ``patch_aspect_ratio``, giving
    ``h = round(sqrt(a H W r))`` by ``w = round(sqrt(a H W / r))`` pixels (at least 1). The first
    candidate that fits is kept (:func:`first_fitting`); ``fits(h, w)`` replaces the default
    "inside the image" test for strategies with a stricter rule. If none fits, the first one is
    clamped to the image. Same rule as :func:`maskmix.torch._sampling.random_rectangles`, which
    draws only the first candidate where every one fits; here all ten are always drawn, so that a
    layer traced with an unknown image size draws what it draws eagerly with the same seed.
    """
    u_area, u_aspect = uniforms(ops, 2, (*shape, ATTEMPTS), seed)
    area = _scaled(u_area, *patch_area)
    aspect = _log_scaled(ops, u_aspect, *patch_aspect_ratio)
    if area_divisor is not None:
        area = area / ops.numpy.expand_dims(ops.cast(area_divisor, "float32"), -1)
    h, w = rectangle_sizes(ops, area, aspect, height, width)
    return first_fitting(ops, h, w, height, width, fits=None if fits is None else fits(h, w))


def place_inside(ops: Ops, h: Tensor, w: Tensor, height: int, width: int, seed: Seed) -> tuple[Tensor, Tensor]:
    """Uniform top-left corners such that an ``h x w`` rectangle lies fully inside the image."""
    top, left = randints(ops, [(0, height - h), (0, width - w)], ops.shape(h), seed)
    return top, left


def random_boxes(ops: Ops, shape: Size, height: int, width: int, patch_area: tuple[float, float],
                 patch_aspect_ratio: tuple[float, float], seed: Seed, *,
                 area_divisor: Tensor | None = None) -> dict[str, Tensor]:
    """Rectangles of :func:`random_rectangles` placed uniformly fully inside (:func:`place_inside`).

    Returns int32 ``top``, ``left``, ``height`` and ``width`` of shape ``shape``: the box
    parameters :func:`box_mask_of` reads.
    """
    h, w = random_rectangles(ops, shape, height, width, patch_area, patch_aspect_ratio, seed,
                             area_divisor=area_divisor)
    top, left = place_inside(ops, h, w, height, width, seed)
    return {"top": top, "left": left, "height": h, "width": w}


def range_mask(ops: Ops, start: Tensor, length: Tensor, size: int) -> Tensor:
    """``(..., size)`` boolean mask of the positions ``start <= i < start + length``."""
    positions = ops.numpy.arange(size, dtype="int32")
    start = ops.numpy.expand_dims(ops.cast(start, "int32"), -1)
    stop = start + ops.numpy.expand_dims(ops.cast(length, "int32"), -1)
    return ops.numpy.logical_and(positions >= start, positions < stop)


def box_mask(ops: Ops, top: Tensor, left: Tensor, h: Tensor, w: Tensor, height: int, width: int) -> Tensor:
    """``(..., H, W)`` boolean mask of per-image boxes given as ``(...)``-shaped tensors.

    Built from two 1-D range masks by a broadcast ``and``: no per-image slicing.
    """
    rows = range_mask(ops, top, h, height)
    cols = range_mask(ops, left, w, width)
    return ops.numpy.logical_and(ops.numpy.expand_dims(rows, -1), ops.numpy.expand_dims(cols, -2))


def box_mask_of(ops: Ops, params: Mapping[str, Tensor], height: int, width: int) -> Tensor:
    """:func:`box_mask` of the boxes ``params["top"]``, ``["left"]``, ``["height"]``, ``["width"]``."""
    return box_mask(ops, params["top"], params["left"], params["height"], params["width"], height, width)


def pick(ops: Ops, candidates: Sequence[int], index: Tensor) -> Tensor:
    """``candidates[index]`` elementwise for a short Python list (int32)."""
    out = ops.numpy.full_like(index, candidates[0], dtype="int32")
    for k, value in enumerate(candidates[1:], start=1):
        out = where(ops, index == k, ops.numpy.full_like(out, value), out)
    return out


# --------------------------------------------------------------------------------------------
# Beta(alpha, alpha): Marsaglia-Tsang gamma variables with a fixed number of proposals.
# --------------------------------------------------------------------------------------------


def _log_standard_gamma(ops: Ops, alpha: float, size: Size, seed: Seed, *, split_boost: bool = False) -> Any:
    """``log`` of Gamma(alpha, 1) samples, with :data:`GAMMA_PROPOSALS` proposals per sample.

    ``keras.random.gamma``/``beta`` lower to TensorFlow's ``StatelessRandomGammaV3``, which has no
    XLA kernel on CPU, so a layer using them cannot run in a ``jit_compile=True`` step. Marsaglia
    and Tsang's method ("A simple method for generating gamma variables", 2000) needs only normal
    and uniform draws: each sample draws ``GAMMA_PROPOSALS`` proposals at once and keeps the
    first accepted one (acceptance >= 95% per proposal). For ``alpha < 1`` the boost
    ``G(alpha) = G(alpha + 1) * U^(1 / alpha)`` is applied in log space so that tiny values do not
    underflow. The same algorithm as :func:`maskmix.torch._mixing.beta`.
    """
    boosted, d, c = gamma_proposal_constants(alpha)
    shape = (*size, GAMMA_PROPOSALS)
    z = ops.random.normal(shape, dtype="float32", seed=seed)
    u = ops.random.uniform(shape, 0.0, 1.0, dtype="float32", seed=seed)
    v = (1.0 + c * z) ** 3
    safe_v = ops.numpy.maximum(v, 1e-30)
    log_v = ops.numpy.log(safe_v)
    accept = ops.numpy.logical_and(v > 0, ops.numpy.log1p(-u) < 0.5 * z * z + d - d * safe_v + d * log_v)
    # If every proposal is rejected (p < 1e-10) the proposal is v = 1 (log 0), i.e. G = d.
    log_gamma = math.log(d) + take_last(ops, log_v, first_true(ops, accept, fallback=False))
    if boosted:
        boost = ops.random.uniform(tuple(size), 0.0, 1.0, dtype="float32", seed=seed)
        log_boost = ops.numpy.log1p(-boost)  # 1 - U lies in (0, 1]: no log(0)
        if split_boost:
            return log_gamma, log_boost
        log_gamma = log_gamma + log_boost / alpha
    return log_gamma


def beta(ops: Ops, alpha: float, size: Size, seed: Seed) -> Tensor:
    """Float32 samples of Beta(alpha, alpha), via two gamma variables: ``G1 / (G1 + G2)``.

    ``Beta(1, 1)`` (CutMix's default) is the uniform distribution on ``(0, 1)`` and is drawn as
    such. Otherwise both gamma variables of every sample are drawn together and combined as
    ``sigmoid(log G1 - log G2)``; compiles under XLA on CPU (see :func:`_log_standard_gamma`).
    The same law as :func:`maskmix.torch._mixing.beta`.
    """
    if alpha == 1.0:
        return uniform(ops, 0.0, 1.0, size, seed)
    if alpha < TINY_BETA_ALPHA:
        # Each boost over alpha alone would be -inf (NaN once subtracted): their difference first,
        # as the torch twin does.
        log_gammas, log_boosts = _log_standard_gamma(ops, alpha, (2, *size), seed, split_boost=True)
        log_g1, log_g2 = ops.core.unstack(log_gammas, 2, axis=0)
        boost_1, boost_2 = ops.core.unstack(log_boosts, 2, axis=0)
        apart, logit = boost_1 - boost_2, log_g1 - log_g2
        return ops.nn.sigmoid(ops.numpy.where(apart == 0, logit, logit + apart / alpha))
    log_g1, log_g2 = ops.core.unstack(_log_standard_gamma(ops, alpha, (2, *size), seed), 2, axis=0)
    return ops.nn.sigmoid(log_g1 - log_g2)


def paper_rectangles(ops: Ops, shape: Size, height: Any, width: Any, patch_area: tuple[float, float],
                     patch_aspect_ratio: tuple[float, float], seed: Seed, *, aspect_law: str, attempts: int,
                     strict: bool, area_divisor: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`random_rectangles` with the laws of Random Erasing's official code as options.

    ``aspect_law`` ``"uniform"`` draws the aspect ratio uniformly in ``patch_aspect_ratio``;
    ``attempts`` candidates are drawn per rectangle; with ``strict`` a candidate fits only when
    ``h < H`` and ``w < W``. Returns ``(h, w, found)``, ``found`` False where no candidate fits.
    Same rule as :func:`maskmix.torch._sampling.paper_rectangles`.
    """
    u_area, u_aspect = uniforms(ops, 2, (*shape, attempts), seed)
    area = _scaled(u_area, *patch_area)
    if aspect_law == "uniform":
        aspect = _scaled(u_aspect, *patch_aspect_ratio)
    else:
        aspect = _log_scaled(ops, u_aspect, *patch_aspect_ratio)
    if area_divisor is not None:
        area = area / ops.numpy.expand_dims(ops.cast(area_divisor, "float32"), -1)
    h, w = rectangle_sizes(ops, area, aspect, height, width)
    if strict:
        fits = ops.numpy.logical_and(h < height, w < width)
    else:
        fits = ops.numpy.logical_and(h <= height, w <= width)
    h, w = first_fitting(ops, h, w, height, width, fits=fits)
    return h, w, ops.numpy.any(fits, axis=-1)
def normal_side_boxes(ops: Ops, shape: Size, height: int, width: int, side: tuple[float, float],
                      seed: Seed) -> dict[str, Tensor]:
    """Boxes of the image's shape whose side ratio is normal: CutBlur's official law.

    Per box: ``r ~ Normal(mean, std)`` for ``side = (mean, std)``, clipped to ``[0, 1]``; the box
    is ``int(H r)`` by ``int(W r)`` pixels (truncated, as the official ``np.int``; possibly empty)
    and its corner is uniform where it fits (:func:`place_inside`). Returns int32 ``top``,
    ``left``, ``height``, ``width`` (as :func:`maskmix.torch._sampling.normal_side_boxes`).
    """
    mean, std = side
    ratio = ops.numpy.clip(ops.random.normal(tuple(shape), dtype="float32", seed=seed) * std + mean, 0.0, 1.0)
    # Floor is the official int() here: the products are non-negative.
    h = ops.cast(ops.numpy.floor(ratio * float(height)), "int32")
    w = ops.cast(ops.numpy.floor(ratio * float(width)), "int32")
    top, left = place_inside(ops, h, w, height, width, seed)
    return {"top": top, "left": left, "height": h, "width": w}
