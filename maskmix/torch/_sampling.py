"""Per-image random sampling and region-mask building blocks, shared by every torch strategy.

Every function draws one value per image (or per image and patch) as a tensor on the images'
device, with an optional ``torch.Generator``. Nothing here reads a tensor value back to the host,
branches on data, or produces a data-dependent shape, so callers stay free of host syncs and
compile with ``torch.compile(fullgraph=True)``. Where the draws come from: each transform's own
``generator``, or the one :func:`using_generator` lends to every call inside its block.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, TypedDict, TypeVar

import torch
from torch import Tensor

from maskmix.geometry import (
    ATTEMPTS,
    log_uniform_bounds,
    rectangles_always_fit,
    rectangles_never_empty,
    sampling_units,
)

from . import _compat

Size = Sequence[int]


class Drawing(TypedDict, total=False):
    """The keyword arguments of :func:`drawing_from`: a ``generator`` or nothing."""

    generator: torch.Generator


def drawing_from(generator: torch.Generator | None) -> Drawing:
    """Keyword arguments that make a ``torch`` random op draw from ``generator``.

    Nothing for the default generator: an explicit ``generator=None`` selects the ``*.generator``
    overloads of ``rand``/``randint``/``randn``, which ``torch.compile`` cannot trace with a
    symbolic size (a batch size that changes between calls, e.g. the last batch of an epoch)
    and which Inductor runs as separate fallback kernels instead of fusing them.
    """
    return {} if generator is None else {"generator": generator}


def rand(size: Size | int, *, device: torch.device, generator: torch.Generator | None) -> Tensor:
    """Float32 samples uniform in ``[0, 1)``, whatever torch's default dtype.

    Lightning's ``precision="bf16-true"``/``"16-true"`` sets the default dtype to bfloat16/float16
    while ``training_step`` runs: a draw in the default dtype would be quantised there (a Mixup
    weight of bfloat16 resolution) or fail (no bfloat16 gamma sampler on CPU).
    """
    return torch.rand(size, dtype=torch.float32, device=device, **drawing_from(generator))


def uniform(low: float | Tensor, high: float | Tensor, size: Size, *, device: torch.device,
            generator: torch.Generator | None) -> Tensor:
    """Float32 samples uniform in ``[low, high)``; ``low``/``high`` may be broadcastable tensors."""
    if isinstance(low, Tensor) or isinstance(high, Tensor):
        u = rand(tuple(size), device=device, generator=generator)
        return low + (high - low) * u
    # One kernel instead of three: on an accelerator, eager cost is mostly launches.
    drawn = torch.empty(tuple(size), dtype=torch.float32, device=device)
    return drawn.uniform_(float(low), float(high), **drawing_from(generator))


def log_uniform(low: float, high: float, size: Size, *, device: torch.device,
                generator: torch.Generator | None) -> Tensor:
    """Float32 samples whose logarithm is uniform in ``[log low, log high)``.

    Bounds are first clamped by :func:`maskmix.geometry.log_uniform_bounds`.
    """
    low, high = log_uniform_bounds(low, high)
    if low == high:
        return torch.full(tuple(size), low, dtype=torch.float32, device=device)
    return torch.exp(uniform(math.log(low), math.log(high), size, device=device, generator=generator))


def uniform_closed(low: float, high: float, size: Size, *, device: torch.device,
                   generator: torch.Generator | None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Samples uniform in ``[low, high]`` of ``dtype``: ``low`` itself when the range is one value.

    ``low + (high - low) * U`` can round above ``high`` in float32; the result is clamped to
    ``high``, so a value drawn from a configured range never leaves it.
    """
    if low == high:
        return torch.full(tuple(size), low, dtype=dtype, device=device)
    drawn = torch.empty(tuple(size), dtype=dtype, device=device).uniform_(low, high, **drawing_from(generator))
    return drawn.clamp_max_(high)


def rounded_within(values: Tensor, bounds: tuple[int, int], *, half_up: bool = False) -> Tensor:
    """Int64 ``round(values)`` clamped into ``bounds`` (both inclusive).

    The float-rounding clamp of the sizes drawn from a range: ``bounds`` are the sizes of the
    range's ends, computed in float64 on the host (:mod:`maskmix.geometry`); a size computed
    on the device from a value drawn in float32 may round one pixel past them, and the clamp
    only undoes that. ``half_up`` rounds halves up (``floor(x + 0.5)``) instead of to even.
    """
    rounded = torch.floor(values + 0.5) if half_up else torch.round(values)
    return rounded.to(torch.int64).clamp(*bounds)


def randint(low: int | Tensor, high: int | Tensor, size: Size, *, device: torch.device,
            generator: torch.Generator | None) -> Tensor:
    """Int64 samples uniform over ``{low, ..., high}`` (both inclusive), per-element bounds allowed.

    Python bounds go to ``torch.randint`` (an empty range, ``high < low``, gives ``high``).
    ``torch.randint`` only takes Python bounds, so tensor bounds are drawn as
    ``low + floor(U * (high - low + 1))`` in float64, which lets every image have its own range;
    the final ``minimum`` guards the rounding of ``U`` close to 1 and empty ranges (``high``).
    """
    size = tuple(size)
    if not isinstance(low, Tensor) and not isinstance(high, Tensor):
        if high < low:
            return torch.full(size, int(high), dtype=torch.int64, device=device)
        if isinstance(high, torch.SymInt) or isinstance(low, torch.SymInt):
            # A symbolic bound (a partner shift of B - 1 under torch.export with a Dim) stays
            # symbolic: int() would specialise the program to the batch size it was traced with.
            return torch.randint(low, high + 1, size, device=device, **drawing_from(generator))
        return torch.randint(int(low), int(high) + 1, size, device=device, **drawing_from(generator))
    u = torch.rand(size, device=device, dtype=torch.float64, **drawing_from(generator))
    span = high + 1 if isinstance(low, int) and low == 0 else high - low + 1
    # Truncation is floor for the non-negative products; a negative product only arises for an
    # empty range, which the minimum below maps to `high` either way.
    drawn = (u * span).to(torch.int64)
    if not (isinstance(low, int) and low == 0):
        drawn = drawn + low
    if isinstance(high, Tensor):
        return torch.minimum(drawn, high if high.dtype == torch.int64 else high.to(torch.int64))
    return drawn.clamp_max(high)


def select_images(batch_size: int, ratio: float | Tensor, bernoulli: bool, *, device: torch.device,
                  generator: torch.Generator | None) -> Tensor:
    """Boolean ``(B,)`` mask of the images to augment (design §Conventions, fraction control).

    ``bernoulli=False`` selects exactly ``num_selected(ratio, B)`` images at random positions;
    ``bernoulli=True`` selects each image independently with probability ``ratio``. A ``(1,)`` tensor
    ``ratio`` (a scheduled value, an input of a compiled step) gives the same selection law with
    the count computed on the device, so that its value is never baked into a traced graph.
    """
    from maskmix.params import COUNT_MARGIN, num_selected

    if bernoulli:
        return rand(batch_size, device=device, generator=generator) < ratio
    if isinstance(ratio, Tensor):
        scores = rand(batch_size, device=device, generator=generator)
        return scores.argsort().argsort() < torch.floor(ratio * (batch_size * (1.0 + COUNT_MARGIN)) + 0.5)
    count = num_selected(ratio, batch_size)
    # The shortcuts compare the count with a batch size that may be symbolic (torch.export with a
    # Dim): that would guard the program to the sizes on one side; the ranks serve every size.
    if not isinstance(batch_size, torch.SymInt):
        if count >= batch_size:
            return torch.ones(batch_size, dtype=torch.bool, device=device)
        if count == 0:
            return torch.zeros(batch_size, dtype=torch.bool, device=device)
    # The rank of an image in a random permutation is below `count` for exactly `count` images.
    scores = rand(batch_size, device=device, generator=generator)
    ranks = scores.argsort().argsort()
    return ranks < count


def unit_index(mode: str, batch_size: int, *, device: torch.device) -> Tensor | None:
    """Per image (or clip), the index of the draw it takes under the sampling ``mode``
    (design §Conventions, sampling modes), or None when each takes its own (``"image"``, or a
    batch of one).

    ``"batch"``: every image takes draw 0; ``"pair"``: images ``i`` and ``B - 1 - i`` take draw
    ``min(i, B - 1 - i)`` (the middle image of an odd batch a draw of its own).
    """
    if sampling_units(mode, batch_size) == batch_size:
        return None
    index = torch.arange(batch_size, device=device)
    if mode == "batch":
        return torch.zeros_like(index)
    return torch.minimum(index, (batch_size - 1) - index)


def spread(params: Mapping[str, Any], index: Tensor | None) -> dict[str, Any]:
    """Per-draw parameters (tensors of leading dim ``units``) given to each image by ``index``
    (:func:`unit_index`); values that are not batched tensors are kept as they are."""
    if index is None:
        return dict(params)
    return {key: value.index_select(0, index) if isinstance(value, Tensor) and value.ndim > 0 else value
            for key, value in params.items()}


def select_units(mode: str, batch_size: int, ratio: float | Tensor, bernoulli: bool, index: Tensor | None, *,
                 device: torch.device, generator: torch.Generator | None, pairs_only: bool = False) -> Tensor:
    """Boolean ``(B,)`` selection under the sampling ``mode`` (design §Conventions, sampling modes).

    ``"image"``: :func:`select_images`. ``"batch"``: with ``bernoulli`` one coin for the whole
    batch (all images or none, the papers' per-batch probability); without, the exact count of
    :func:`select_images` over the images. ``"pair"``: one selection per pair (:func:`select_images`
    over the pairs, the exact count counting pairs), shared by its two images. With
    ``pairs_only`` (the mixing strategies, whose middle image of an odd batch is its own partner
    and is never mixed) the middle image is not a unit that can be selected: the count is over
    the ``B // 2`` pairs.
    """
    if index is None or (mode == "batch" and not bernoulli):
        return select_images(batch_size, ratio, bernoulli, device=device, generator=generator)
    if pairs_only and mode == "pair":
        # The middle unit (index B // 2, present when B is odd) is never selected.
        pairs = select_images(batch_size // 2, ratio, bernoulli, device=device, generator=generator)
        return torch.cat((pairs, torch.zeros(1, dtype=torch.bool, device=device))).index_select(0, index)
    units = sampling_units(mode, batch_size)
    return select_images(units, ratio, bernoulli, device=device, generator=generator).index_select(0, index)


def rectangle_sizes(area_fraction: Tensor, aspect_ratio: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Integer ``(h, w)`` of rectangles with ``h * w ~ area_fraction * H * W`` and ``h / w ~ aspect``.

    Sizes are rounded to the nearest pixel and at least 1; they are *not* clipped to the image
    (callers decide whether a rectangle that does not fit is redrawn, clamped or clipped).
    """
    sides = rectangle_sides(area_fraction, aspect_ratio, height, width)
    return sides[0], sides[1]


_Result = TypeVar("_Result")


def host_cached(maxsize: int) -> Callable[[Callable[..., _Result]], Callable[..., _Result]]:
    """``functools.lru_cache(maxsize)`` for a pure function of Python values, in eager calls only.

    While ``torch.compile`` traces, the function itself is called: Dynamo would trace through the
    cache wrapper anyway, and says so in a ``UserWarning`` ("silent incorrectness is a potential
    risk") at every compilation of a transform that uses one.
    """

    def decorate(function: Callable[..., _Result]) -> Callable[..., _Result]:
        cached = functools.lru_cache(maxsize=maxsize)(function)

        @functools.wraps(function)
        def call(*args: Any) -> _Result:
            if torch.compiler.is_compiling():
                return function(*args)
            return cached(*args)

        call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return call

    return decorate


#: :func:`maskmix.geometry.rectangles_always_fit`, remembered per image size and ranges (a
#: Python test on every call otherwise).
always_fit = host_cached(maxsize=256)(rectangles_always_fit)
#: :func:`maskmix.geometry.rectangles_never_empty`, remembered likewise.
never_empty = host_cached(maxsize=256)(rectangles_never_empty)


def rectangle_sides(area_fraction: Tensor, aspect_ratio: Tensor, height: int, width: int) -> Tensor:
    """:func:`rectangle_sizes` as one int64 ``(2, ...)`` tensor: heights ``[0]``, widths ``[1]``."""
    target = area_fraction * float(height * width)
    # Both sides rounded in one stacked pass: 8 kernels instead of 11, the same values.
    # The upper clamp keeps an extreme aspect ratio's inf side castable; it still exceeds H and W.
    sides = torch.stack((target * aspect_ratio, target / aspect_ratio)).sqrt_().round_()
    sides = sides.clamp_(1, height * width + 1)
    return sides.to(torch.int64)


def first_fitting(h: Tensor, w: Tensor, height: int, width: int, *,
                  fits: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Pick, along the last dim of ``(..., attempts)`` candidates, the first that fits in the image.

    This is the vectorised form of the usual "try up to N times" loop (torchvision, timm): each
    image keeps its first candidate with ``h <= H`` and ``w <= W`` (or, when given, the first
    whose ``fits`` is True); an image whose candidates all fail keeps its first candidate clamped
    to the image, so a patch is always produced.
    """
    return first_fitting_sides(torch.stack((h, w)), height, width, fits=fits)


def first_fitting_sides(sides: Tensor, height: int, width: int, *,
                        fits: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """:func:`first_fitting` of the candidates ``sides`` (``(2, ..., attempts)``: heights, widths),
    both sides picked by one gather."""
    if fits is None:
        # A square image compares both sides with one bound.
        fits = (sides <= height).all(dim=0) if height == width else (sides[0] <= height) & (sides[1] <= width)
    index = fits.to(torch.uint8).argmax(dim=-1, keepdim=True)  # first True, or 0 if none
    chosen = sides.gather(-1, index.expand(2, *index.shape)).squeeze(-1)
    if height == width:
        chosen = chosen.clamp_max(height)
        return chosen[0], chosen[1]
    return chosen[0].clamp_max(height), chosen[1].clamp_max(width)


class RectanglePatches:
    """Mixin of the strategies whose rectangles :func:`random_rectangles` draws from the validated
    ``patch_area`` and ``patch_aspect_ratio`` ranges (CutBlur and its pairs, Random Erasing,
    CutPaste, CutSwap): it declares the two attributes and draws with them."""

    patch_area: tuple[float, float]
    patch_aspect_ratio: tuple[float, float]

    def draw_rectangles(self, shape: Size, height: int, width: int, *, device: torch.device,
                        generator: torch.Generator | None,
                        fits: Callable[[Tensor, Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """:func:`random_rectangles` with this strategy's ranges."""
        return random_rectangles(shape, height, width, self.patch_area, self.patch_aspect_ratio, device=device,
                                 generator=generator, fits=fits)

    def draw_boxes(self, shape: Size, height: int, width: int, *, device: torch.device,
                   generator: torch.Generator | None, area_divisor: Tensor | None = None) -> dict[str, Tensor]:
        """:func:`random_boxes` with this strategy's ranges."""
        return random_boxes(shape, height, width, self.patch_area, self.patch_aspect_ratio, device=device,
                            generator=generator, area_divisor=area_divisor)


def random_rectangles(shape: Size, height: int, width: int, patch_area: tuple[float, float],
                      patch_aspect_ratio: tuple[float, float], *, device: torch.device,
                      generator: torch.Generator | None, area_divisor: Tensor | None = None,
                      fits: Callable[[Tensor, Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Int64 ``(h, w)`` rectangle sizes of shape ``shape``, drawn as RandomErasing draws them.

    For each rectangle, :data:`ATTEMPTS` candidates are drawn at once: an area fraction ``a``
    uniform in ``patch_area`` (divided by ``area_divisor``, broadcast against ``shape``, when
    given: RandomErasing splits the area between the patches of one image) and an aspect ratio
    ``r = h / w`` log-uniform in ``patch_aspect_ratio``, giving ``h = round(sqrt(a H W r))`` by
    ``w = round(sqrt(a H W / r))`` pixels (at least 1). The first candidate that fits is kept
    (:func:`first_fitting`); ``fits(h, w)`` replaces the default "inside the image" test for
    strategies with a stricter rule (CutSwap needs room for two patches). If no candidate fits,
    the first one is clamped to the image. Where every candidate fits (:data:`always_fit`, and
    no ``fits`` rule) only the first is drawn.
    """
    single = fits is None and always_fit(height, width, patch_area, patch_aspect_ratio)
    # When every candidate fits, the first is the one kept: draw only it (the same law).
    size = tuple(shape) if single else (*shape, ATTEMPTS)
    area = uniform(*patch_area, size, device=device, generator=generator)
    aspect = log_uniform(*patch_aspect_ratio, size, device=device, generator=generator)
    if area_divisor is not None:
        area = area / (area_divisor if single else area_divisor.unsqueeze(-1))
    sides = rectangle_sides(area, aspect, height, width)
    if single:
        return sides[0], sides[1]
    return first_fitting_sides(sides, height, width, fits=None if fits is None else fits(sides[0], sides[1]))


def fitting_box_sizes(shape: Size, height: int, width: int, patch_area: tuple[float, float],
                      patch_aspect_ratio: tuple[float, float], *, device: torch.device,
                      generator: torch.Generator | None, area_divisor: Tensor | None = None) -> Tensor:
    """:func:`random_rectangles`' law, as one int64 ``(*shape, 2)`` tensor (heights ``[..., 0]``,
    widths ``[..., 1]``: :func:`box_keep`'s layout), in fewer kernels.

    The same candidates (:data:`ATTEMPTS` per box: an area fraction uniform in ``patch_area``,
    divided by ``area_divisor`` when given, an aspect ratio ``r`` log-uniform in
    ``patch_aspect_ratio``), written ``h = round(sqrt(a H W) * r ** 0.5)`` and
    ``w = round(sqrt(a H W) / r ** 0.5)``: both powers of ``r`` come from one ``exp`` of
    ``+-log(r) / 2``, and both uniforms from one draw. The first candidate that fits is kept, or
    the first one clamped to the image; where every candidate fits (:data:`always_fit`) only the
    first is drawn.
    """
    attempts, floored, shift, scale, signs = kept(
        ("fitting_box_sizes", height, width, patch_area, patch_aspect_ratio), device,
        lambda: _fitting_constants(height, width, patch_area, patch_aspect_ratio, device))
    drawn = torch.addcmul(shift, scale, rand((*shape, 2, attempts), device=device, generator=generator))
    area = drawn.narrow(-2, 0, 1)
    if area_divisor is not None:
        area = area / area_divisor.view(*area_divisor.shape, 1, 1)
    sides = drawn.narrow(-2, 1, 1).mul(signs).exp_().mul_(area.sqrt()).round_()
    if attempts == 1:
        if area_divisor is not None or not floored:
            sides = sides.clamp_min_(1)
        return sides.squeeze(-1).to(torch.int64)
    # At least 1; the upper clamp keeps an extreme aspect ratio's inf side castable (it still
    # exceeds H and W).
    sides = sides.clamp_(1, height * width + 1).to(torch.int64)
    if height == width:
        fits = (sides <= height).all(dim=-2)
    else:
        fits = (sides.select(-2, 0) <= height) & (sides.select(-2, 1) <= width)
    first = fits.to(torch.uint8).argmax(dim=-1, keepdim=True)  # first True, or 0 if none
    chosen = sides.gather(-1, first.unsqueeze(-2).expand(*first.shape[:-1], 2, 1)).squeeze(-1)
    if height == width:
        return chosen.clamp_max(height)
    return torch.minimum(chosen, cached_constant((height, width), torch.int64, device))


def _fitting_constants(height: int, width: int, patch_area: tuple[float, float],
                       patch_aspect_ratio: tuple[float, float], device: torch.device
                       ) -> tuple[int, bool, Tensor, Tensor, Tensor]:
    """What :func:`fitting_box_sizes` needs of a configuration and image size (:func:`kept`): the
    candidates per box (1 where every candidate fits: the first is always the one kept, so only
    it is drawn, the same law), whether every side rounds to at least 1 already, and the
    ``(2, 1)`` shift, scale and signs with which one ``addcmul`` makes ``[area in pixels,
    log(r) / 2]`` of a uniform pair and the signs give ``+-log(r) / 2`` for heights and widths."""
    low, high = patch_area
    log_low, log_high = (math.log(v) for v in log_uniform_bounds(*patch_aspect_ratio))
    pixels = float(height * width)
    attempts = 1 if always_fit(height, width, patch_area, patch_aspect_ratio) else ATTEMPTS
    constants = cached_constant((low * pixels, 0.5 * log_low, (high - low) * pixels, 0.5 * (log_high - log_low),
                                 1.0, -1.0), torch.float32, device).view(3, 2, 1)
    shift, scale, signs = constants.unbind(0)
    return attempts, never_empty(height, width, patch_area, patch_aspect_ratio), shift, scale, signs


def place_inside(h: Tensor, w: Tensor, height: int, width: int, *, device: torch.device,
                 generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Uniform top-left corners such that an ``h x w`` rectangle lies fully inside the image."""
    # Rows and columns drawn together: half the kernels of two draws (a square image needs one
    # subtraction for both).
    room = height - torch.stack((h, w)) if height == width else torch.stack((height - h, width - w))
    corner = randint(0, room, (2, *h.shape), device=device, generator=generator)
    return corner[0], corner[1]


def uniform_corners(rows: int | Tensor, cols: int | Tensor, shape: Size, *, device: torch.device,
                    generator: torch.Generator | None) -> Tensor:
    """Int64 ``(*shape, 2)`` positions: ``[..., 0]`` uniform in ``{0, ..., rows}``, ``[..., 1]`` in
    ``{0, ..., cols}`` (both inclusive, ``rows, cols >= 0``): the corners of boxes placed fully
    inside an image with that much room (:func:`place_inside`, the last dim holding rows and
    columns, as :func:`box_keep` reads them).

    Python bounds equal on both axes (a fixed box in a square image) take one ``randint``; other
    bounds (both Python ints, or both tensors broadcastable to ``shape``) draw ``floor(U * (room + 1))``
    with ``U`` uniform in ``[0, 1)`` in float64, below ``room + 1`` for every integer room under
    ``2 ** 52`` (the product's rounding error is under half the spacing of doubles there).
    """
    size = (*shape, 2)
    if not isinstance(rows, Tensor) and not isinstance(cols, Tensor):
        if rows == cols:
            return torch.randint(0, int(rows) + 1, size, device=device, **drawing_from(generator))
        spans: Tensor = cached_constant((rows + 1, cols + 1), torch.float64, device)
    elif isinstance(rows, Tensor) and rows is cols:
        spans = (rows + 1).unsqueeze(-1)  # one room for both axes
    elif isinstance(rows, Tensor) and isinstance(cols, Tensor):
        spans = torch.stack(torch.broadcast_tensors(rows, cols), -1) + 1
    else:
        raise TypeError("uniform_corners: rows and cols must both be Python ints or both tensors")
    u = torch.rand(size, device=device, dtype=torch.float64, **drawing_from(generator))
    return (u * spans).to(torch.int64)  # truncation is floor: the products are non-negative


def place_sizes(sizes: Tensor, height: int, width: int, *, generator: torch.Generator | None) -> Tensor:
    """Int64 top-left corners, shaped like ``sizes`` (``(..., 2)``: heights, widths), of boxes of
    those sizes placed uniformly fully inside an ``H x W`` image: :func:`place_inside` in
    :func:`box_keep`'s layout, each position ``floor(U * (room + 1))`` as :func:`uniform_corners`."""
    device = sizes.device
    ends = height + 1 if height == width else cached_constant((height + 1, width + 1), torch.int64, device)
    u = torch.rand(sizes.shape, device=device, dtype=torch.float64, **drawing_from(generator))
    return (u * torch.rsub(sizes, ends)).to(torch.int64)


def random_points(shape: Size, height: int, width: int, *, device: torch.device,
                  generator: torch.Generator | None) -> Tensor:
    """Int64 ``(2, *shape)`` pixel positions: rows uniform in ``[0, H)`` (``[0]``), columns in ``[0, W)``
    (``[1]``); one draw for both on a square image."""
    if height == width:
        return torch.randint(0, height, (2, *shape), device=device, **drawing_from(generator))
    return torch.stack((randint(0, height - 1, shape, device=device, generator=generator),
                        randint(0, width - 1, shape, device=device, generator=generator)))


def clip_to_image(positions: Tensor, height: int, width: int) -> Tensor:
    """``(2, ...)`` row (``[0]``) and column (``[1]``) positions clamped to ``[0, H]`` and ``[0, W]``."""
    if height == width:
        return positions.clamp(0, height)
    # The two limits built on the device (a tensor from a Python list would be a host copy).
    limits = torch.full((2,) + (1,) * (positions.ndim - 1), height, dtype=positions.dtype, device=positions.device)
    limits[1].fill_(width)
    return torch.minimum(positions.clamp_min(0), limits)


def boxes_from_ends(starts: Tensor, ends: Tensor, height: int, width: int) -> dict[str, Tensor]:
    """The box parameters (``top``, ``left``, ``height``, ``width``) of the ``(2, ...)`` row/column
    ``[starts, ends)`` ranges, clipped to the image."""
    starts, ends = clip_to_image(starts, height, width), clip_to_image(ends, height, width)
    sizes = ends - starts
    return {"top": starts[0], "left": starts[1], "height": sizes[0], "width": sizes[1]}


def random_boxes(shape: Size, height: int, width: int, patch_area: tuple[float, float],
                 patch_aspect_ratio: tuple[float, float], *, device: torch.device,
                 generator: torch.Generator | None, area_divisor: Tensor | None = None) -> dict[str, Tensor]:
    """Rectangles of :func:`random_rectangles` placed uniformly fully inside (:func:`place_inside`).

    Returns int64 ``top``, ``left``, ``height`` and ``width`` of shape ``shape``: the box
    parameters :func:`box_mask_of` reads.
    """
    h, w = random_rectangles(shape, height, width, patch_area, patch_aspect_ratio, device=device,
                             generator=generator, area_divisor=area_divisor)
    top, left = place_inside(h, w, height, width, device=device, generator=generator)
    return {"top": top, "left": left, "height": h, "width": w}


def mask_and(a: Tensor, b: Tensor) -> Tensor:
    """``a & b`` for boolean masks (broadcast against each other), computed as a uint8 product.

    The values are those of ``a & b``. On CPU the boolean ``&`` of a broadcast pair is not
    vectorised while the uint8 product is: about 3x faster for a ``(B, H, W)`` mask at 32x32
    pixels and 20x at 224x224. Under ``torch.compile`` this is plain ``&`` (fused anyway).
    """
    if torch.compiler.is_compiling():
        return a & b
    return (a.view(torch.uint8) * b.view(torch.uint8)).view(torch.bool)


def box_mask(top: Tensor, left: Tensor, h: Tensor, w: Tensor, height: int, width: int, *,
             within: Tensor | None = None) -> Tensor:
    """``(..., H, W)`` boolean mask of per-image boxes given as ``(...)``-shaped tensors.

    Row ``y`` is in the box when ``top <= y < top + h``, column ``x`` when ``left <= x < left + w``.
    ``within`` (boolean, broadcastable to the boxes' ``(...)`` shape, e.g. the per-image
    selection) empties the boxes where it is False: the result is ``box_mask(...) & within``,
    folded into the ``(..., H)`` row masks instead of a pass over the ``(..., H, W)`` mask.
    """
    # Rows and columns are compared in one (2, ..., max(H, W)) pass: 7 kernels instead of 10.
    starts = torch.stack((top, left))
    ends = starts + torch.stack((h, w))
    positions = torch.arange(max(height, width), device=top.device)
    inside = (positions >= starts.unsqueeze(-1)) & (positions < ends.unsqueeze(-1))
    rows, cols = inside[0, ..., :height], inside[1, ..., :width]
    if within is not None:
        rows = rows & within.unsqueeze(-1)
    return mask_and(rows.unsqueeze(-1), cols.unsqueeze(-2))


#: The integer dtype of each element size: the bit patterns of an image dtype (uint8 for uint8).
_SAME_SIZE_INTEGER = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def same_size_integer(dtype: torch.dtype) -> torch.dtype:
    """The integer dtype whose values are the bit patterns of ``dtype`` (``float32`` -> ``int32``,
    ``bfloat16``/``float16`` -> ``int16``, ``float64`` -> ``int64``, ``uint8`` -> ``uint8``)."""
    return _SAME_SIZE_INTEGER[dtype.itemsize]


@functools.lru_cache(maxsize=256)
def _cached(kind: str, value: Any, dtype: torch.dtype, device: torch.device) -> Tensor:
    # Built outside inference mode: an inference tensor could not be used by a later call that
    # records autograd. Read-only by contract: no caller writes into these.
    with torch.inference_mode(False):
        if kind == "arange":
            return torch.arange(value, dtype=dtype, device=device)
        if kind == "ones":
            return torch.ones(value, dtype=dtype, device=device)
        if kind == "full":
            shape, fill = value
            return torch.full(shape, fill, dtype=dtype, device=device)
        return torch.tensor(value[0], dtype=dtype).to(device)  # once per value and device


#: Small tensors kept between eager calls (see :func:`kept`), oldest first, with their size in bytes.
_KEPT: dict[tuple[object, ...], tuple[object, int]] = {}
_KEPT_LOCK = threading.Lock()
#: Entries :func:`kept` holds: a few per configuration, image size and batch size of each transform.
KEPT_ENTRIES = 128
#: Bytes of tensors :func:`kept` holds at most (all devices together): per-size constants of
#: large images (a pixel index of a 1000 x 1000 image is 8 MB) would otherwise stay on the device
#: for the whole run, one per size a random-resize pipeline produces.
KEPT_BYTES = 64 << 20

_Kept = TypeVar("_Kept")


def _tensor_bytes(value: object) -> int:
    return sum(leaf.numel() * leaf.element_size() for leaf in _compat.tree_flatten(value)[0]
               if isinstance(leaf, Tensor))


def kept(key: tuple[object, ...], device: torch.device, build: Callable[[], _Kept]) -> _Kept:
    """``build()``, made once per ``key`` and ``device`` and kept between eager calls.

    For the small constant tensors that depend on the configuration and the image size only: a
    call then launches no kernel to build them. Under ``torch.compile`` they are built inside
    the graph (where they are folded). They are built outside inference mode whatever the
    call's mode: an inference tensor could not be saved by a later call that records autograd.
    The oldest entries go beyond :data:`KEPT_ENTRIES` entries or :data:`KEPT_BYTES` bytes; a
    value larger than that alone is not kept.
    """
    if torch.compiler.is_compiling():
        return build()
    full_key = (*key, device)
    entry = _KEPT.get(full_key)
    if entry is not None:
        return entry[0]  # type: ignore[return-value]
    with torch.inference_mode(False):
        value = build()
    size = _tensor_bytes(value)
    if size > KEPT_BYTES:
        return value
    with _KEPT_LOCK:  # transforms may run in several threads; a miss is rare
        entry = _KEPT.get(full_key)
        if entry is not None:  # another thread kept it meanwhile
            return entry[0]  # type: ignore[return-value]
        held = sum(bytes_ for _, bytes_ in _KEPT.values())
        while _KEPT and (len(_KEPT) >= KEPT_ENTRIES or held + size > KEPT_BYTES):
            # The entry inserted first goes (dicts keep insertion order; a hit does not move
            # its entry, which would cost every call host time): the entries a call has just
            # built stay for the next call, where clearing the whole cache midway through a
            # call made the next one rebuild them (a stream of batch sizes did, every call).
            held -= _KEPT.pop(next(iter(_KEPT)))[1]
        _KEPT[full_key] = (value, size)
    return value


def cached_arange(length: int, device: torch.device, dtype: torch.dtype = torch.int64) -> Tensor:
    """``torch.arange(length)`` on ``device``, built once per (length, dtype, device) in eager mode.

    Each call of a transform needs the same pixel positions; building them is a kernel launch
    (host time) per call. The cached tensor is shared: never write into it. Under
    ``torch.compile`` a fresh ``arange`` is traced instead (it is free there: fused).
    """
    if torch.compiler.is_compiling():
        return torch.arange(length, dtype=dtype, device=device)
    return _cached("arange", length, dtype, device)


def cached_all_true(size: int, device: torch.device) -> Tensor:
    """A boolean ``(size,)`` tensor of True on ``device``, cached like :func:`cached_arange`
    (the selection of a batch selected whole by construction). Never write into it."""
    if torch.compiler.is_compiling():
        return torch.ones(size, dtype=torch.bool, device=device)
    return _cached("ones", size, torch.bool, device)


def cached_constant(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """The ``(len(values),)`` tensor of ``values`` in ``dtype`` on ``device``, copied there once per
    (values, dtype, device) in eager mode; under ``torch.compile`` built from device-side fills
    (a tensor from a Python list would be a host-to-device copy in every call)."""
    if torch.compiler.is_compiling():
        return torch.stack([torch.full((), v, dtype=dtype, device=device) for v in values])
    # The signs are part of the key: -0.0 == 0.0 (and hashes alike), so a (-0.0,) fill would
    # otherwise get the tensor of a (0.0,) fill made before it, and the reverse.
    return _cached("constant", (values, tuple(math.copysign(1.0, v) for v in values)), dtype, device)


def cached_full(shape: tuple[int, ...], value: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``torch.full(shape, value)`` on ``device``, cached like :func:`cached_arange` (a fixed
    parameter of every image, e.g. the side of a fixed-size square). Never write into it."""
    if torch.compiler.is_compiling():
        return torch.full(shape, value, dtype=dtype, device=device)
    return _cached("full", (shape, value), dtype, device)


@functools.lru_cache(maxsize=256)
def _scalar_bits(value: float | int, sign: float, dtype: torch.dtype) -> int:
    # The very cast torch.where applies to a Python fill: the same bits whatever the dtype
    # (bfloat16 rounding of a float included). `sign` is in the key because -0.0 == 0.0 (same
    # hash) would otherwise share a cache entry with different bits.
    written = torch.where(torch.ones((), dtype=torch.bool), value, torch.zeros((), dtype=dtype))
    return int(written.view(same_size_integer(dtype)).item())  # a CPU tensor: no device sync


def keep_or_fill(images: Tensor, keep: Tensor, fill: Tensor | float | int) -> Tensor:
    """``torch.where(keep, images, fill)`` computed on the images' bit patterns.

    ``keep`` holds 0 and 1 in :func:`same_size_integer` of the images' dtype, broadcastable to
    the images; ``fill`` is a Python number or a tensor in the images' dtype, broadcastable too.
    The result is bit for bit the ``where``'s: kept pixels are multiplied by the integer 1 (NaN
    payloads, infinities and -0.0 come back untouched) and a filled pixel is ``0 + fill`` (its
    exact bits); no sum can overflow, one of its terms being 0. Why not ``where``: on a CPU its
    kernel is not vectorised, an integer product is (about 5x faster on a 8x3x32x32 batch). No
    gradient flows through integers: callers use ``where`` for images that record one.
    """
    bits = same_size_integer(images.dtype)
    kept = images.view(bits) * keep
    if isinstance(fill, Tensor):
        kept = kept.addcmul_(fill.view(bits), torch.rsub(keep, 1))
    else:
        fill_bits = _scalar_bits(fill, math.copysign(1.0, fill), images.dtype)
        if fill_bits:
            kept = kept.add_(torch.rsub(keep, 1), alpha=fill_bits)
    return kept.view(images.dtype)


def box_keep(starts: Tensor, ends: Tensor, height: int, width: int, dtype: torch.dtype, *,
             within: Tensor | None = None) -> Tensor:
    """``(..., H, W)`` tensor of ``dtype``: 1 (True) outside the box, 0 inside it.

    ``starts`` and ``ends`` are ``(..., 2)`` non-negative integer tensors: rows
    ``[starts[..., 0], ends[..., 0])`` by columns ``[starts[..., 1], ends[..., 1])``. ``within``
    (boolean, broadcastable to the boxes' ``(...)`` shape, e.g. the selection) empties the boxes
    where it is False: their ends become 0, one product over the box corners instead of a pass
    over the mask. Rows and columns are tested in one ``(..., 2, max(H, W))`` pass; a pixel is
    kept where its row or its column lies outside, so the mask is one broadcast ``|`` of the two.
    """
    if within is not None:
        ends = ends * within.unsqueeze(-1)
    positions = cached_arange(max(height, width), starts.device)
    outside = ((positions < starts.unsqueeze(-1)) | (positions >= ends.unsqueeze(-1))).to(dtype)
    rows, cols = split_lines(outside, height, width)
    return rows.unsqueeze(-1) | cols.unsqueeze(-2)


def split_lines(lines: Tensor, height: int, width: int, *, dim: int = -2) -> tuple[Tensor, Tensor]:
    """Views of the rows ``(..., H)`` and the columns ``(..., W)`` of ``lines``, whose dim ``dim``
    (size 2) holds rows at 0 and columns at 1 over a last dim of ``max(H, W)`` positions: the
    layout in which box and band tests compare rows and columns in one pass. One ``unbind``
    (indexing costs more host time), narrowed only when ``H != W``."""
    rows, cols = lines.unbind(dim)
    if height != width:
        rows, cols = rows.narrow(-1, 0, height), cols.narrow(-1, 0, width)
    return rows, cols


def box_mask_of(params: Mapping[str, Tensor], height: int, width: int, *,
                within: Tensor | None = None) -> Tensor:
    """:func:`box_mask` of the boxes ``params["top"]``, ``["left"]``, ``["height"]``, ``["width"]``."""
    return box_mask(params["top"], params["left"], params["height"], params["width"], height, width, within=within)


def pick(candidates: Sequence[int], index: Tensor) -> Tensor:
    """``candidates[index]`` elementwise for a short Python list, without a host-to-device copy."""
    out = torch.full_like(index, candidates[0])
    for k, value in enumerate(candidates[1:], start=1):
        out = torch.where(index == k, value, out)
    return out


def exact_matmuls(device_type: str) -> contextlib.AbstractContextManager[Any]:
    """A block whose matmuls run in their inputs' dtype: autocast off where it is on (it would run
    the resampling products in bfloat16/float16 and quantise float32 images), nothing otherwise."""
    # Devices without autocast (meta) cannot even be asked whether it is on.
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


#: The generator lent to every maskmix transform called inside :func:`using_generator` (this
#: thread/task only); None outside it. Nothing is written on the transforms.
_LENT_GENERATOR: ContextVar[torch.Generator | None] = ContextVar("maskmix_lent_generator", default=None)


@contextlib.contextmanager
def using_generator(generator: torch.Generator | None) -> Iterator[None]:
    """Make every maskmix transform called inside the block draw from ``generator``.

    The generator is passed at call time, also to transforms nested in torchvision containers
    (``v2.Compose``, ``v2.RandomApply``...), which call them without extra arguments: it takes the
    place of each transform's own ``generator`` for the calls made inside the block, and nothing
    is written on the transforms (another thread or task is unaffected). ``None`` leaves each
    transform its own generator. This is how :class:`maskmix.torch.MaskMixPipeline` seeds each
    batch. ``torch.compile`` cannot trace a ``torch.Generator``: do not enter the block in code
    that is being compiled (the pipeline does not).

    Args:
        generator: a ``torch.Generator`` on the images' device, or None.

    Example:
        >>> import torch
        >>> from torchvision.transforms import v2
        >>> from maskmix.torch import RandomErasing, using_generator
        >>> pipeline = v2.Compose([v2.RandomHorizontalFlip(p=0.0), RandomErasing()])
        >>> x = torch.rand(4, 3, 8, 8)
        >>> with using_generator(torch.Generator().manual_seed(0)):
        ...     a = pipeline(x)
        >>> with using_generator(torch.Generator().manual_seed(0)):
        ...     b = pipeline(x)
        >>> torch.equal(a, b)
        True
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"using_generator: generator must be a torch.Generator or None; got {generator!r}")
    token = _LENT_GENERATOR.set(generator)
    try:
        yield
    finally:
        _LENT_GENERATOR.reset(token)


def lent_generator() -> torch.Generator | None:
    """The generator :func:`using_generator` lends to the calls of this thread/task, or None."""
    return _LENT_GENERATOR.get()


def paper_rectangles(shape: Size, height: int, width: int, patch_area: tuple[float, float],
                     patch_aspect_ratio: tuple[float, float], *, aspect_law: str, attempts: int, strict: bool,
                     device: torch.device, generator: torch.Generator | None,
                     area_divisor: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`random_rectangles` with the laws of Random Erasing's official code as options.

    ``aspect_law`` ``"uniform"`` draws the aspect ratio uniformly in ``patch_aspect_ratio``
    (``"log_uniform"`` as :func:`random_rectangles`); ``attempts`` candidates are drawn per
    rectangle; with ``strict`` a candidate fits only when ``h < H`` and ``w < W`` (the official
    test). Returns ``(h, w, found)``: ``found`` is False where no candidate fits, and the caller
    decides what that means (the official loop erases nothing).
    """
    size = (*shape, attempts)
    area = uniform(*patch_area, size, device=device, generator=generator)
    if aspect_law == "uniform":
        aspect = uniform(*patch_aspect_ratio, size, device=device, generator=generator)
    else:
        aspect = log_uniform(*patch_aspect_ratio, size, device=device, generator=generator)
    if area_divisor is not None:
        area = area / area_divisor.unsqueeze(-1)
    sides = rectangle_sides(area, aspect, height, width)
    h, w = sides[0], sides[1]
    fits = (h < height) & (w < width) if strict else (h <= height) & (w <= width)
    h, w = first_fitting_sides(sides, height, width, fits=fits)
    return h, w, fits.any(dim=-1)


def normal_side_boxes(shape: Size, height: int, width: int, side: tuple[float, float], *, device: torch.device,
                      generator: torch.Generator | None) -> dict[str, Tensor]:
    """Boxes of the image's shape whose side ratio is normal: CutBlur's official law.

    Per box: ``r ~ Normal(mean, std)`` for ``side = (mean, std)``, clipped to ``[0, 1]``; the box
    is ``int(H r)`` by ``int(W r)`` pixels (truncated, as the official ``np.int``; possibly empty)
    and its corner is uniform where it fits (:func:`place_inside`, both ends included like
    ``np.random.randint(0, H - h + 1)``). Returns int64 ``top``, ``left``, ``height``, ``width``.
    """
    mean, std = side
    ratio = (torch.randn(tuple(shape), device=device, dtype=torch.float64, **drawing_from(generator)) * std
             + mean).clamp(0.0, 1.0)
    # Truncation is floor here: the products are non-negative.
    h = (ratio * height).to(torch.int64)
    w = (ratio * width).to(torch.int64)
    top, left = place_inside(h, w, height, width, device=device, generator=generator)
    return {"top": top, "left": left, "height": h, "width": w}
