"""CutSwap: swap the contents of two non-overlapping patches of the same size (Qin et al., 2023)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.params import RANDOM_CUTSWAP, given_arguments

from . import _patches, _sampling
from ._base import CommonOptions, MaskMixLayer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomCutSwap"]

Tensor = Any


def _cell_outside_block(ops: Any, index: Tensor, columns: Tensor, block_top: Tensor, block_rows: Tensor,
                        block_left: Tensor, block_columns: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column of the ``index``-th cell, in raster order, of a grid minus a block.

    The grid has ``columns`` columns (and enough rows); the rows ``block_top <= r < block_top +
    block_rows`` and columns ``block_left <= c < block_left + block_columns`` form the removed
    block (``block_rows`` or ``block_columns`` may be 0). Cells above the block, beside it and
    below it are counted in that order, so ``index`` uniform over ``[0, cells)`` gives a uniform
    cell of the grid outside the block. Elementwise over per-image int32 tensors; the same
    mapping as :mod:`maskmix.torch.cutswap`.
    """
    np_ = ops.numpy
    above = block_top * columns
    band_columns = columns - block_columns
    band = block_rows * band_columns
    safe_columns = np_.maximum(columns, 1)
    # Above the block.
    row_above, col_above = np_.floor_divide(index, safe_columns), np_.mod(index, safe_columns)
    # Beside the block: skip its columns.
    in_band = index - above
    safe_band_columns = np_.maximum(band_columns, 1)
    row_band = block_top + np_.floor_divide(in_band, safe_band_columns)
    col_band = np_.mod(in_band, safe_band_columns)
    col_band = np_.where(col_band < block_left, col_band, col_band + block_columns)
    # Below the block.
    below = index - above - band
    row_below = block_top + block_rows + np_.floor_divide(below, safe_columns)
    col_below = np_.mod(below, safe_columns)
    is_above = index < above
    is_band = np_.logical_and(np_.logical_not(is_above), index < above + band)
    row = np_.where(is_above, row_above, np_.where(is_band, row_band, row_below))
    col = np_.where(is_above, col_above, np_.where(is_band, col_band, col_below))
    return row, col


def _span(ops: Any, first: Tensor, last: Tensor) -> tuple[Tensor, Tensor]:
    """``(start, count)`` of the integer interval ``[first, last]`` (count 0 when empty)."""
    return first, ops.numpy.maximum(last - first + 1, 0)


@keras.saving.register_keras_serializable(package="maskmix")
class RandomCutSwap(_sampling.RectanglePatches, MaskMixLayer):
    """Swap the contents of two non-overlapping patches of the same size in each image.

    Paper: the CutSwap augmentation of Qin et al., 2023 (two same-size regions of one image
    exchange their contents; the rest of the image is unchanged).

    Per image (the same rules as :class:`maskmix.torch.RandomCutSwap`):

    1. A patch size ``h x w`` is drawn as in :class:`~maskmix.keras.RandomErasing` (area
       fraction uniform in ``patch_area``, aspect ratio ``h / w`` log-uniform in
       ``patch_aspect_ratio``, ``h = round(sqrt(a H W r))``, ``w = round(sqrt(a H W / r))``, at
       least 1), except that the size must leave room for two disjoint patches:
       ``h <= H, w <= W`` and (``2 h <= H`` or ``2 w <= W``). The first of 10 candidates that
       allows it is kept; if none does, the first is clamped to the image and then its height is
       capped at ``H // 2`` or its width at ``W // 2``, whichever keeps the larger patch (a side
       of 1 pixel cannot be halved, so only the other one is capped).
    2. Patch A's top-left corner is drawn uniformly among the positions (fully inside) that
       leave room for a disjoint patch B; B's corner is drawn uniformly among the positions
       (fully inside) where B does not overlap A. Both draws are exact: the valid positions are
       a grid minus one rectangular block, so a uniform index is mapped straight to a
       position; no rejection loop, no fallback.
    3. Every pixel of A takes the value of the pixel at the same offset in B, and vice versa;
       all other pixels are unchanged (values are moved by one gather over the flattened
       pixels, never recomputed: exact for every dtype).

    Images with fewer than 2 pixels (``1 x 1``) have no room for two patches: they are passed
    through unchanged and count as not augmented.

    Args:
        patch_area: area of *each* patch as a fraction of the image: a float in (0, 1) or a
            range ``(lo, hi)`` drawn uniformly. Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width: a number > 0 or a range ``(lo, hi)`` drawn
            log-uniformly. Default ``(0.3, 3.0)``.
        return_labels: call returns ``(output, is_augmented)``, with 1 where two patches were
            swapped and 0 where the image passed through. Default False.
        **common: the common options and layer arguments; see :class:`~maskmix.keras.MaskMixLayer`.

    Shapes:
        images ``(B, H, W, C)``, ``(H, W, C)`` or channels-first come back with their patches
        swapped, in the input's shape and dtype; ``is_augmented`` is int64 ``(B,)`` (a scalar
        for one image; int32 on JAX without x64). ``get_random_transformation`` draws ``height``,
        ``width``, ``top_a``, ``left_a``, ``top_b``, ``left_b`` and ``selected``, all ``(B,)``.

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomCutSwap
        >>> images = np.random.rand(8, 64, 64, 3).astype("float32")
        >>> out = RandomCutSwap(patch_area=(0.05, 0.2), seed=0)(images)
        >>> tuple(out.shape)
        (8, 64, 64, 3)
    """

    spec = RANDOM_CUTSWAP

    def __init__(
        self,
        *,
        patch_area: float | tuple[float, float] = (0.05, 0.3),
        patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
        return_labels: bool = False,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def refine_selection(self, params: dict[str, Any], height: Any, width: Any) -> None:
        if isinstance(height, int) and isinstance(width, int):
            if height < 2 and width < 2:
                # No room for two disjoint patches: nothing is swapped, nothing is augmented.
                params["selected"] = self.ops.numpy.zeros_like(params["selected"])
        else:  # the size is only known when the graph runs
            roomy = self.ops.numpy.logical_or(height >= 2, width >= 2)
            params["selected"] = self.ops.numpy.logical_and(params["selected"], roomy)

    def sample(self, batch_size: Any, channels: int, height: int, width: int, *,
               dtype: str, seed: Any) -> dict[str, Any]:
        ops = self.ops
        np_ = ops.numpy
        size = (batch_size,)
        h, w = self._sizes(size, height, width, seed)
        rows, columns = height - h + 1, width - w + 1
        # A must leave room for B: the corners from which no disjoint B fits form one block,
        # rows H - 2h < t < h (no room above nor below) times columns W - 2w < l < w.
        bad_top, bad_rows = _span(ops, np_.maximum(height - 2 * h + 1, 0), np_.minimum(h - 1, height - h))
        bad_left, bad_columns = _span(ops, np_.maximum(width - 2 * w + 1, 0), np_.minimum(w - 1, width - w))
        count_a = rows * columns - bad_rows * bad_columns
        index_a = _sampling.randint(ops, 0, np_.maximum(count_a - 1, 0), size, seed)
        top_a, left_a = _cell_outside_block(ops, index_a, columns, bad_top, bad_rows, bad_left, bad_columns)
        # B avoids the corners that overlap A: rows |t - top_a| < h times columns |l - left_a| < w.
        near_top, near_rows = _span(ops, np_.maximum(top_a - h + 1, 0), np_.minimum(top_a + h - 1, height - h))
        near_left, near_columns = _span(ops, np_.maximum(left_a - w + 1, 0), np_.minimum(left_a + w - 1, width - w))
        count_b = rows * columns - near_rows * near_columns
        index_b = _sampling.randint(ops, 0, np_.maximum(count_b - 1, 0), size, seed)
        top_b, left_b = _cell_outside_block(ops, index_b, columns, near_top, near_rows, near_left, near_columns)
        return {"height": h, "width": w, "top_a": top_a, "left_a": left_a, "top_b": top_b, "left_b": left_b}

    def _sizes(self, size: tuple[Any, ...], height: int, width: int, seed: Any) -> tuple[Tensor, Tensor]:
        ops = self.ops
        np_ = ops.numpy

        def leaves_room_for_two(h: Tensor, w: Tensor) -> Tensor:
            inside = np_.logical_and(h <= height, w <= width)
            return np_.logical_and(inside, np_.logical_or(2 * h <= height, 2 * w <= width))

        h, w = self.draw_rectangles(ops, size, height, width, seed, fits=leaves_room_for_two)
        static = isinstance(height, int) and isinstance(width, int)
        if static and height < 2 and width < 2:
            return h, w  # 1 x 1 images: nothing can be swapped (see get_random_transformation)
        room = np_.logical_or(2 * h <= height, 2 * w <= width)
        # Cap the side whose halving keeps the larger patch; a side of one pixel cannot be halved.
        capped_h = np_.minimum(h, height // 2)
        capped_w = np_.minimum(w, width // 2)
        if not static:  # the same choice, in the graph (1 x 1 images are deselected there)
            cap_height = np_.logical_and(height >= 2, np_.logical_or(width < 2, capped_h * w >= h * capped_w))
        elif height < 2:
            cap_height = np_.zeros_like(room)
        elif width < 2:
            cap_height = np_.ones_like(room)
        else:
            cap_height = capped_h * w >= h * capped_w
        h = np_.where(np_.logical_or(room, np_.logical_not(cap_height)), h, capped_h)
        w = np_.where(np_.logical_or(room, cap_height), w, capped_w)
        return h, w

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        ops = self.ops
        np_ = ops.numpy
        _, _, height, width = self.dims(images)
        h, w = params["height"], params["width"]
        top_a, left_a, top_b, left_b = params["top_a"], params["left_a"], params["top_b"], params["left_b"]
        selected = np_.reshape(params["selected"], (-1, 1, 1))
        box_a = np_.logical_and(_sampling.box_mask(ops, top_a, left_a, h, w, height, width), selected)
        box_b = np_.logical_and(_sampling.box_mask(ops, top_b, left_b, h, w, height, width), selected)
        # A reads B (flat offset +shift), B reads A (-shift), everything else stays: one gather.
        shift = np_.reshape((top_b - top_a) * width + (left_b - left_a), (-1, 1, 1))
        zero = np_.zeros_like(box_a, dtype="int32")
        offsets = np_.where(box_a, shift + zero, np_.where(box_b, zero - shift, zero))
        return _patches.move_pixels(ops, images, offsets, channels_first=self.channels_first)
