"""Building blocks of the strategies that move pixels around: CutBlur, Cut-Thumbnail, CutPaste and CutSwap.

* :func:`move_pixels` moves pixels within each image by per-pixel offsets, in one gather whose
  index is shared by the channels (no ``(B, C, H, W)`` index tensor); a channels_last batch comes
  back channels_last, without a copy.
* :func:`resample_matrix` builds per-image separable resampling matrices that reproduce
  ``torch.nn.functional.interpolate`` for a different output size per image.
* :func:`rectangle_candidates`, :func:`sides_inside`, :func:`first_fitting`,
  :func:`uniform_corners`, :func:`box_lines` and :func:`cell_outside_block` draw and place the
  patches with few kernels: rows and columns are handled together as ``(2, ...)`` tensors
  (``[0]`` rows/heights, ``[1]`` columns/widths), and the small constants they compare with are
  kept between eager calls (:func:`constants`).

In eager mode on an accelerator, a call costs mostly host time per kernel launched (about 1 us of
Python and dispatcher each, on the CPU too), so these functions count kernels. Like
:mod:`maskmix.torch._sampling`, nothing here reads tensor values back to the host or builds
data-dependent shapes, so every function runs under ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor

from maskmix.geometry import ATTEMPTS, log_uniform_bounds

from . import _compat, _sampling

__all__ = ["Constants", "box_lines", "cell_outside_block", "column", "constants", "first_fitting", "kept", "kept_table",
           "kept_tables", "move_pixels", "pixel_indices", "rectangle_candidates", "resample_matrix", "sides_inside",
           "table_fits", "uniform_corners"]

#: Integer dtypes of the same width as each float dtype, for bit-exact pixel moves.
#: A kept resampling table: one tensor, or a tuple of them.
_Table = TypeVar("_Table")

_SAME_SIZE_INTEGER = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


class Constants(NamedTuple):
    """The small tensors of one image size that the patch code compares with (all int64 but
    ``band_row``); rows ``[0]`` are about heights, ``[1]`` about widths."""

    #: ``(2, 1)``: ``[H, W]``.
    dims: Tensor
    #: ``(2, 1)``: ``[H + 1, W + 1]`` (a side ``s`` has ``dims1 - s`` positions).
    dims1: Tensor
    #: ``(2, 1)``: ``[H // 2, W // 2]`` (``2 s <= H`` exactly when ``s <= H // 2``).
    halves: Tensor
    #: ``(2, 1)``: ``[2 (W // 2), 2 (H // 2)]`` (CutSwap's cap of a patch with no room for two).
    cap_weights: Tensor
    #: ``(2, 1)``: ``[W, 1]``, a row/column pair's weights in a flat pixel index.
    strides: Tensor
    #: ``(2, 1)``: ``[1, -1]``.
    signs: Tensor
    #: ``(2, 1)``: ``[0, 1]``.
    steps: Tensor
    #: ``(2, 1)`` bool: ``[False, True]`` (see :func:`cell_outside_block`).
    band_row: Tensor
    #: ``(max(H, W),)``: ``0, 1, ...`` (rows and columns are compared with one pass).
    positions: Tensor


#: Configuration constants kept between eager calls (:func:`maskmix.torch._sampling.kept`).
kept = _sampling.kept


def column(values: Sequence[float | bool], device: torch.device, dtype: torch.dtype = torch.int64) -> Tensor:
    """An int64 (or ``dtype``) ``(len(values), 1)`` column of Python numbers on ``device``."""
    # Built from device-side fills: torch.tensor(list, device=...) would be a host-to-device copy.
    return torch.stack([torch.full((), v, dtype=dtype, device=device) for v in values]).view(-1, 1)


def constants(height: int, width: int, device: torch.device) -> Constants:
    """The :class:`Constants` of ``H x W`` images on ``device`` (:func:`kept`)."""
    def build() -> Constants:
        return Constants(
            dims=column((height, width), device),
            dims1=column((height + 1, width + 1), device),
            halves=column((height // 2, width // 2), device),
            cap_weights=column((2 * (width // 2), 2 * (height // 2)), device),
            strides=column((width, 1), device),
            signs=column((1, -1), device),
            steps=column((0, 1), device),
            band_row=column((False, True), device, torch.bool),
            positions=torch.arange(max(height, width), device=device),
        )

    return kept(("constants", height, width), device, build)


def pixel_indices(height: int, width: int, device: torch.device) -> Tensor:
    """Int64 ``(H W,)`` flat pixel indices ``0, 1, ...`` of ``H x W`` images on ``device`` (:func:`kept`).

    Kept apart from :func:`constants`, for the strategies that move pixels (:func:`move_pixels`):
    CutBlur and Cut-Thumbnail never read them, and ``8 H W`` bytes of them in the constants
    pushed the whole tuple past :data:`maskmix.torch._sampling.KEPT_BYTES` (4096 x 4096 images),
    so that every call rebuilt all of it. Past that cap only these are rebuilt per call.
    """
    return kept(("pixels", height, width), device, lambda: torch.arange(height * width, device=device))


def rectangle_candidates(shape: Sequence[int], height: int, width: int, patch_area: tuple[float, float],
                         patch_aspect_ratio: tuple[float, float], *, device: torch.device,
                         generator: torch.Generator | None, attempts: int = ATTEMPTS) -> Tensor:
    """Int64 ``(2, *shape, attempts)`` candidate sides, heights ``[0]`` and widths ``[1]``.

    The law of :func:`maskmix.torch._sampling.random_rectangles`' candidates: an area fraction
    ``a`` uniform in ``patch_area`` and an aspect ratio ``r = h / w`` log-uniform in
    ``patch_aspect_ratio`` (bounds clamped by :func:`maskmix.geometry.log_uniform_bounds`),
    ``h = round(sqrt(a H W) exp(log(r) / 2))``, ``w = round(sqrt(a H W) exp(-log(r) / 2))`` (at
    least 1: ``sqrt(a H W r)`` and ``sqrt(a H W / r)`` up to float32 rounding). Both uniforms are
    one draw, scaled and shifted by one ``addcmul``: 9 kernels.
    """
    low, high = patch_area
    log_low, log_high = (math.log(v) for v in log_uniform_bounds(*patch_aspect_ratio))
    pixels = float(height * width)

    def build() -> tuple[Tensor, Tensor, Tensor]:
        # Row 0 of a uniform draw becomes a H W, row 1 log(r) / 2; then the signs of log(r) / 2.
        scale = column((pixels * (high - low), (log_high - log_low) / 2), device, torch.float32)
        shift = column((pixels * low, log_low / 2), device, torch.float32)
        return scale, shift, column((1.0, -1.0), device, torch.float32)

    scale, shift, signs = kept(("candidates", height, width, low, high, log_low, log_high), device, build)
    count = math.prod(shape) * attempts
    drawn = torch.addcmul(shift, scale, _sampling.rand((2, count), device=device, generator=generator))
    sides = drawn[1:].mul(signs).exp_().mul_(drawn[0].sqrt_()).round_()
    if not (_sampling.always_fit(height, width, patch_area, patch_aspect_ratio)
            and _sampling.never_empty(height, width, patch_area, patch_aspect_ratio)):
        # The upper clamp keeps an extreme aspect ratio's huge side castable; it still exceeds
        # H and W. Where every side lies in [1, H] x [1, W] already, the clamp changes nothing.
        sides = sides.clamp_(1, height * width + 1)
    return sides.to(torch.int64).view(2, *shape, attempts)


def sides_inside(batch_size: int, height: int, width: int, patch_area: tuple[float, float],
                 patch_aspect_ratio: tuple[float, float], const: Constants, *, device: torch.device,
                 generator: torch.Generator | None) -> Tensor:
    """Int64 ``(2, B)`` rectangle sides of RandomErasing's law (heights ``[0]``, widths ``[1]``):
    the first of the :func:`rectangle_candidates` inside the image, or the first clamped to it.

    Where every candidate fits (:data:`maskmix.torch._sampling.always_fit`) only the first is
    drawn: the same law in a third of the kernels.
    """
    if _sampling.always_fit(height, width, patch_area, patch_aspect_ratio):
        return rectangle_candidates((batch_size,), height, width, patch_area, patch_aspect_ratio, device=device,
                                    generator=generator, attempts=1).squeeze(-1)
    candidates = rectangle_candidates((batch_size,), height, width, patch_area, patch_aspect_ratio, device=device,
                                      generator=generator)
    return first_fitting(candidates, (candidates <= const.dims.unsqueeze(-1)).all(dim=0), const.dims)


def first_fitting(sides: Tensor, fits: Tensor, limits: Tensor) -> Tensor:
    """The first candidate of ``sides`` (``(2, B, attempts)``) whose ``fits`` (``(B, attempts)``)
    is True, or the first one where none is, clamped to ``limits`` (``(2, 1)``): ``(2, B)``."""
    index = fits.to(torch.uint8).argmax(dim=-1, keepdim=True)  # first True, or 0 if none
    return torch.minimum(sides.gather(-1, index.expand(2, *index.shape)).squeeze(-1), limits)


def uniform_corners(sides: Tensor, const: Constants, *, generator: torch.Generator | None) -> Tensor:
    """Int64 ``(2, B)`` top-left corners (rows ``[0]``, columns ``[1]``), uniform where ``(2, B)``
    ``sides`` lie fully inside the image: ``floor(U (H - h + 1))`` for a float64 ``U`` in [0, 1).

    No clamp is needed: ``U`` is a multiple of ``2^-53`` below 1, and for an integer ``n < 2^53``
    the float64 product ``U n`` rounds below ``n`` (it lies at least ``n 2^-53``, half the spacing of
    the floats just below ``n``, under it; a power of two has a finer spacing below it and the
    product is then exact), so its truncation is at most ``n - 1``.
    """
    room = const.dims1 - sides
    u = torch.rand(sides.shape, dtype=torch.float64, device=sides.device, **_sampling.drawing_from(generator))
    return (u * room).to(torch.int64)


def box_lines(starts: Tensor, sides: Tensor, positions: Tensor, height: int, width: int, *,
              within: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Boolean row ``(..., H)`` and column ``(..., W)`` masks of boxes given as ``(2, ...)`` corners
    and sides (``starts <= y < starts + sides``); the box is their outer product. ``within``
    (broadcastable to ``(...)``) empties the boxes where it is False."""
    starts = starts.unsqueeze(-1)
    inside = (positions >= starts) & (positions < starts + sides.unsqueeze(-1))
    rows, cols = _sampling.split_lines(inside, height, width, dim=0)
    if within is not None:
        rows = rows & within.unsqueeze(-1)
    return rows, cols


def cell_outside_block(index: Tensor, cells: Tensor, first: Tensor, count: Tensor, band_row: Tensor) -> Tensor:
    """``(2, B)`` row ``[0]`` and column ``[1]`` of the ``index``-th cell, in raster order, of a grid
    minus a block.

    The grid has ``cells[0]`` rows and ``cells[1]`` columns; the block's rows are ``first[0] <= r <
    first[0] + count[0]`` and its columns ``first[1] <= c < first[1] + count[1]`` (a count may be
    0); ``band_row`` is :attr:`Constants.band_row`. The cells are numbered rows outside the block
    first, then the band of rows beside it, so ``index`` uniform over ``[0, cells)`` gives a
    uniform cell of the grid outside the block; each part is a division by its row length and a
    skip over the block's rows (outside the band) or columns (in it). Elementwise over images.
    """
    # Rows and columns as views by one unbind each (indexing costs more host time).
    (rows, columns), (count_rows, count_columns) = cells.unbind(0), count.unbind(0)
    outside = (rows - count_rows) * columns  # cells in the rows outside the block
    in_band = index >= outside
    # At least 1: a block that fills its rows leaves an empty band, which no index reaches.
    band_width = (columns - count_columns).clamp_min(1)
    width = torch.where(in_band, band_width, columns)
    # Band cells are numbered from the block's first row on, so that the quotient is the row itself.
    local = index + in_band * (first.select(0, 0) * band_width - outside)
    row = torch.floor_divide(local, width)  # not `//`: Tensor.__floordiv__ is a Python wrapper
    cell = torch.stack((row, local - row * width))
    # Past the block: a row outside the band skips the block's rows, a column in it its columns.
    return cell + ((cell >= first) & (in_band == band_row)) * count


def move_pixels(images: Tensor, offsets: Tensor, pixels: Tensor | None = None, *,
                consume_offsets: bool = False) -> Tensor:
    """``out[b, c, p] = images[b, c, p + offsets[b, p]]`` over the flattened pixels ``p = y W + x``.

    ``images`` is ``(B, C, H, W)`` and ``offsets`` an int64 tensor of ``B H W`` flat source offsets
    (0 keeps a pixel where it is; ``dy * W + dx`` reads the pixel ``dy`` rows below and ``dx``
    columns to the right); ``pixels`` is ``arange(H W)`` when at hand (:func:`pixel_indices`).
    One gather moves every channel with the same ``(B, 1, H W)`` index, broadcast over the
    channels (never a ``(B, C, H, W)`` index); a channels_last batch moves whole pixels (their
    ``C`` values are contiguous) with one ``index_select`` and comes back channels_last. Pixels
    whose offset is 0 are copied bit for bit, NaN included; moved pixels too, except in images
    that record a gradient, which are gathered as values (a moved NaN may then change payload).
    Offsets must keep every source inside the image.

    ``consume_offsets=True`` says that ``offsets`` is a fresh dense buffer of the caller's, read
    by nothing else afterwards: the indices are then built in it, in place, rather than in a
    second int64 ``(B, H W)`` tensor (for uint8 images, 2.7 times the batch's bytes).
    """
    batch, channels, height, width = images.shape
    if pixels is None:
        pixels = torch.arange(height * width, device=images.device)
    # Move the bits, not the values: CPU gather canonicalises bfloat16 NaN payloads, and pixels
    # that stay (unselected images included) must come back bit for bit. Integer images are
    # bits already. Integer views carry no gradient: float images that require one are gathered
    # as values (autograd then flows through) and their pixels that stay are restored below.
    floating = images.is_floating_point()
    as_values = floating and _compat.records_gradients(images)
    bits = images.view(_SAME_SIZE_INTEGER[images.element_size()]) if floating and not as_values else images
    # Which pixels stay must be read before `offsets` may become indices in place.
    stay = offsets.reshape(batch, 1, height, width) == 0 if as_values else None
    flat = offsets.reshape(batch, height * width)
    # Integer additions: the same indices in place as out of place. The buffer is int64 (no
    # gradient), and written before the gather or index_select saves it for backward.
    index = flat.add_(pixels) if consume_offsets else pixels + flat
    if channels > 1 and images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous():
        # (B H W, C) rows, one per pixel: the result is laid out as the input, with no copy. The
        # image's first row is added into `index`, which is fresh either way.
        index.add_(torch.arange(0, batch * height * width, height * width, device=images.device).view(-1, 1))
        rows = bits.permute(0, 2, 3, 1).reshape(batch * height * width, channels)
        moved = rows.index_select(0, index.view(-1)).view(batch, height, width, channels).permute(0, 3, 1, 2)
    else:
        moved = bits.reshape(batch, channels, height * width).gather(
            2, index.unsqueeze(1).expand(batch, channels, height * width)).view(batch, channels, height, width)
    if stay is None:
        # Bits were moved (integer images, or float images seen as integers): the pixels that
        # stay are already copied bit for bit, and no `where` over the batch is needed.
        return moved.view(images.dtype) if floating else moved
    # Values gathered for their gradient: the pixels that stay (unselected images included) are
    # taken from the images themselves, whose bits a where keeps (the gather rewrote bfloat16 NaN
    # payloads and float16 signalling NaNs); their gradient flows back to the same pixels.
    return torch.where(stay, images, moved)


#: The largest table of resampling matrices (those of every size a range allows, for one axis)
#: that CutBlur and Cut-Thumbnail build and keep between eager calls. A table grows with the cube
#: of the side (CutBlur with ``blur_factor=(0.1, 0.5)``: 18 GB for 1356 x 2040 images); beyond this
#: each image's matrices are built per call instead.
RESAMPLING_TABLE_BYTES = 64 << 20


def table_fits(count: int, largest: int, size: int, dtype: torch.dtype) -> bool:
    """Whether ``count`` resampling matrices of ``largest x size`` fit :data:`RESAMPLING_TABLE_BYTES`."""
    return count * largest * size * dtype.itemsize <= RESAMPLING_TABLE_BYTES


#: The resampling tables of each transform (:func:`kept_table`), held beside it rather than in its
#: ``__dict__``: a table may weigh tens of MiB, which pickling (spawned DataLoader workers,
#: ``torch.save(model)``) and ``copy.deepcopy`` (an EMA copy of the model) would carry along, and
#: which ``module.to()`` would not move. Dropped with the transform.
_TABLES: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()


def kept_tables(owner: Any) -> dict[tuple[Any, ...], Any]:
    """The resampling tables :func:`kept_table` keeps for ``owner`` (empty if none)."""
    return _TABLES.get(owner, {})


def kept_table(owner: Any, key: tuple[Any, ...], build: Callable[[], _Table], *, slots: int) -> _Table:
    """``build()``, kept for ``owner`` between eager calls under ``key`` (at most ``slots`` tables:
    one per axis, and per kind of input; all dropped when one more is needed); under
    ``torch.compile`` built inside the graph.

    Resampling tables depend on the configuration and the image size only: a call then costs a
    gather instead of the few dozen small kernels that build them.
    """
    if torch.compiler.is_compiling():
        return build()
    cache = _TABLES.get(owner)
    if cache is None:
        cache = _TABLES.setdefault(owner, {})
    table = cache.get(key)
    if table is None:
        if len(cache) >= slots:
            cache.clear()
        # Built outside inference mode whatever the call's: an inference tensor could not be
        # saved by a later call that records autograd, and one table then serves both kinds.
        with torch.inference_mode(False):
            table = cache[key] = build()
    return table


def resample_matrix(in_size: Tensor, out_size: Tensor, in_max: int, out_max: int, method: str,
                    dtype: torch.dtype) -> Tensor:
    """``(B, out_max, in_max)`` matrices resampling a length ``in_size[b]`` to ``out_size[b]``.

    Row ``i < out_size[b]`` holds the weights of output sample ``i`` over the input samples
    ``j < in_size[b]``; rows and columns beyond an image's own sizes are zero, so a batch whose
    images have different sizes is handled by one padded batched matmul. Applied along both
    axes (``R_h @ X @ R_w^T``) the matrices reproduce ``torch.nn.functional.interpolate`` with
    ``size=(out_h, out_w)`` (up to floating-point summation order):

    * ``"nearest"``: ``mode="nearest-exact"`` (pixel centres aligned, as PIL and TensorFlow);
    * ``"nearest_legacy"``: ``mode="nearest"``, ``interpolate``'s default (source pixel
      ``floor(i * n_in / n_out)``: the top-left pixel of each bin; Cut-Thumbnail's official code);
    * ``"area"``: ``mode="area"`` (adaptive average pooling, exact integer bin boundaries);
    * ``"bilinear"``/``"bicubic"``: ``mode=method, antialias=True, align_corners=False`` (the
      PIL/torchvision resize: a triangle or Keys cubic (a = -0.5) filter widened by the scale
      when down-sampling, weights normalised at the borders).

    ``in_size`` and ``out_size`` are int64 tensors broadcastable to ``(B,)``.
    """
    device = in_size.device
    i = torch.arange(out_max, device=device).view(1, -1, 1)
    j = torch.arange(in_max, device=device).view(1, 1, -1)
    n_in = in_size.reshape(-1, 1, 1)
    n_out = out_size.reshape(-1, 1, 1)
    valid = (i < n_out) & (j < n_in)
    if method == "nearest":
        # float32 arithmetic, as ATen's nearest-exact kernels, so that ties round the same way.
        scale = n_in.to(torch.float32) / n_out.to(torch.float32)
        source = torch.floor((i.to(torch.float32) + 0.5) * scale).to(torch.int64)
        weights = (j == torch.minimum(source, n_in - 1)).to(dtype)
    elif method == "nearest_legacy":
        # ATen's legacy nearest: floor(i * scale), the scale and product in float32.
        scale = n_in.to(torch.float32) / n_out.to(torch.float32)
        source = torch.floor(i.to(torch.float32) * scale).to(torch.int64)
        weights = (j == torch.minimum(source, n_in - 1)).to(dtype)
    elif method == "area":
        start = (i * n_in) // n_out.clamp_min(1)
        end = ((i + 1) * n_in + n_out - 1) // n_out.clamp_min(1)
        weights = ((j >= start) & (j < end)).to(dtype) / (end - start).clamp_min(1).to(dtype)
    else:
        support_base = 1.0 if method == "bilinear" else 2.0
        scale = n_in.to(dtype) / n_out.clamp_min(1).to(dtype)
        center = scale * (i.to(dtype) + 0.5)
        upsampling = scale < 1.0
        inv_scale = torch.where(upsampling, 1.0, 1.0 / scale)
        support = torch.where(upsampling, support_base, support_base * scale)
        lowest = torch.trunc(center - support + 0.5).clamp_min(0)
        beyond = torch.minimum(torch.trunc(center + support + 0.5), n_in.to(dtype))
        position = j.to(dtype)
        x = ((position - center + 0.5) * inv_scale).abs()
        if method == "bilinear":
            weights = (1.0 - x).clamp_min(0.0)
        else:
            a = -0.5  # Keys' cubic convolution, as PIL and antialiased torch bicubic
            inner = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
            outer = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
            weights = torch.where(x < 1.0, inner, torch.where(x < 2.0, outer, 0.0))
        weights = torch.where((position >= lowest) & (position < beyond) & valid, weights, 0.0)
        total = weights.sum(dim=-1, keepdim=True)
        weights = weights / torch.where(total == 0, 1.0, total)
    return torch.where(valid, weights, 0.0)
