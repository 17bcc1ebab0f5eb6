"""CutSwap: swap the contents of two non-overlapping patches of the same size (Qin et al., 2023)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from typing_extensions import Unpack

from maskmix.params import RANDOM_CUTSWAP, given_arguments

from . import _patches, _sampling
from ._base import CommonOptions, MaskMixTransform, selection

__all__ = ["RandomCutSwap"]


def _cell_outside_block(index: Tensor, columns: Tensor, block_top: Tensor, block_rows: Tensor,
                        block_left: Tensor, block_columns: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column of the ``index``-th cell, in raster order, of a grid minus a block.

    The grid has ``columns`` columns (and enough rows); the rows ``block_top <= r < block_top +
    block_rows`` and columns ``block_left <= c < block_left + block_columns`` form the removed
    block (``block_rows`` or ``block_columns`` may be 0). Cells above the block, beside it and
    below it are counted in that order, so ``index`` uniform over ``[0, cells)`` gives a uniform
    cell of the grid outside the block. Everything is elementwise over per-image tensors.
    """
    above = block_top * columns
    band_columns = columns - block_columns
    band = block_rows * band_columns
    # Above the block.
    row_above, col_above = index // columns, index % columns
    # Beside the block: skip its columns.
    in_band = index - above
    safe_band_columns = band_columns.clamp_min(1)
    row_band = block_top + in_band // safe_band_columns
    col_band = in_band % safe_band_columns
    col_band = torch.where(col_band < block_left, col_band, col_band + block_columns)
    # Below the block.
    below = index - above - band
    row_below = block_top + block_rows + below // columns
    col_below = below % columns
    is_above = index < above
    is_band = ~is_above & (index < above + band)
    row = torch.where(is_above, row_above, torch.where(is_band, row_band, row_below))
    col = torch.where(is_above, col_above, torch.where(is_band, col_band, col_below))
    return row, col


def _span(first: Tensor, last: Tensor) -> tuple[Tensor, Tensor]:
    """``(start, count)`` of the integer interval ``[first, last]`` (count 0 when empty)."""
    return first, (last - first + 1).clamp_min(0)


class RandomCutSwap(_sampling.RectanglePatches, MaskMixTransform):
    """Swap the contents of two non-overlapping patches of the same size in each image.

    Paper: the CutSwap augmentation of Qin et al., 2023 (two same-size regions of one image
    exchange their contents; the rest of the image is unchanged).

    Per image:

    1. A patch size ``h x w`` is drawn as in :class:`~maskmix.torch.RandomErasing` (area
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
       all other pixels are unchanged (values are moved, never recomputed: exact for every
       dtype).

    Images with fewer than 2 pixels (``1 x 1``) have no room for two patches: they are passed
    through unchanged and count as not augmented.

    Args:
        patch_area: area of *each* patch as a fraction of the image: a float in (0, 1) or a
            range ``(lo, hi)`` drawn uniformly. Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width: a number > 0 or a range ``(lo, hi)`` drawn
            log-uniformly. Default ``(0.3, 3.0)``.
        return_labels: call returns ``(output, is_augmented)``, with 1 where two patches were
            swapped and 0 where the image passed through. Default False.
        **common: common options; see :class:`~maskmix.torch.MaskMixTransform`, whose
            :meth:`~maskmix.torch.MaskMixTransform.forward` describes ``is_augmented``.

    Shapes:
        images ``(..., C, H, W)`` come back with their patches swapped and the input's shape,
        dtype and device; ``is_augmented`` is shaped ``shape[:-3]`` (0-d for one image).

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomCutSwap
        >>> images = torch.rand(8, 3, 64, 64)
        >>> out = RandomCutSwap(patch_area=(0.05, 0.2))(images)
        >>> out.shape
        torch.Size([8, 3, 64, 64])
    """

    spec = RANDOM_CUTSWAP
    dense_targets = "move"

    def __init__(
        self,
        *,
        patch_area: float | tuple[float, float] = (0.05, 0.3),
        patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
        return_labels: bool = False,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def refine_selection(self, params: dict[str, Any]) -> None:
        _, height, width = params["batch_shape"]
        if height < 2 and width < 2:
            # No room for two disjoint patches: nothing is swapped, nothing is augmented.
            params["selected"] = torch.zeros_like(params["selected"])
            params["all_selected"] = False

    def sample(self, batch_size: int, channels: int, height: int, width: int, *,
               dtype: torch.dtype, device: torch.device,
               generator: torch.Generator | None) -> dict[str, Any]:
        h, w = self._sizes(batch_size, height, width, device=device, generator=generator)
        rows, columns = height - h + 1, width - w + 1
        # A must leave room for B: the corners from which no disjoint B fits form one block,
        # rows H - 2h < t < h (no room above nor below) times columns W - 2w < l < w.
        bad_top, bad_rows = _span((height - 2 * h + 1).clamp_min(0), torch.minimum(h - 1, height - h))
        bad_left, bad_columns = _span((width - 2 * w + 1).clamp_min(0), torch.minimum(w - 1, width - w))
        count_a = rows * columns - bad_rows * bad_columns
        index_a = _sampling.randint(0, (count_a - 1).clamp_min(0), (batch_size,), device=device, generator=generator)
        top_a, left_a = _cell_outside_block(index_a, columns, bad_top, bad_rows, bad_left, bad_columns)
        # B avoids the corners that overlap A: rows |t - top_a| < h times columns |l - left_a| < w.
        near_top, near_rows = _span((top_a - h + 1).clamp_min(0), torch.minimum(top_a + h - 1, height - h))
        near_left, near_columns = _span((left_a - w + 1).clamp_min(0), torch.minimum(left_a + w - 1, width - w))
        count_b = rows * columns - near_rows * near_columns
        index_b = _sampling.randint(0, (count_b - 1).clamp_min(0), (batch_size,), device=device, generator=generator)
        top_b, left_b = _cell_outside_block(index_b, columns, near_top, near_rows, near_left, near_columns)
        return {"height": h, "width": w, "top_a": top_a, "left_a": left_a, "top_b": top_b, "left_b": left_b}

    def _sizes(self, batch_size: int, height: int, width: int, *, device: torch.device,
               generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        def leaves_room_for_two(h: Tensor, w: Tensor) -> Tensor:
            return (h <= height) & (w <= width) & ((2 * h <= height) | (2 * w <= width))

        h, w = self.draw_rectangles((batch_size,), height, width, fits=leaves_room_for_two, device=device,
                                    generator=generator)
        if height < 2 and width < 2:
            return h, w  # 1 x 1 images: nothing can be swapped (see make_params)
        room = (2 * h <= height) | (2 * w <= width)
        # Cap the side whose halving keeps the larger patch; a side of one pixel cannot be halved.
        capped_h = torch.full_like(h, height // 2)
        capped_w = torch.full_like(w, width // 2)
        if height < 2:
            cap_height = torch.zeros_like(room)
        elif width < 2:
            cap_height = torch.ones_like(room)
        else:
            cap_height = torch.minimum(h, capped_h) * w >= h * torch.minimum(w, capped_w)
        h = torch.where(room | ~cap_height, h, torch.minimum(h, capped_h))
        w = torch.where(room | cap_height, w, torch.minimum(w, capped_w))
        return h, w

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        _, _, height, width = images.shape
        h, w = params["height"], params["width"]
        top_a, left_a, top_b, left_b = params["top_a"], params["left_a"], params["top_b"], params["left_b"]
        selected = selection(params)
        box_a = _sampling.box_mask(top_a, left_a, h, w, height, width, within=selected)
        box_b = _sampling.box_mask(top_b, left_b, h, w, height, width, within=selected)
        # A reads B (flat offset +shift), B reads A (-shift), everything else stays: one gather.
        shift = ((top_b - top_a) * width + (left_b - left_a)).view(-1, 1, 1)
        offsets = torch.where(box_a, shift, torch.where(box_b, -shift, 0))
        return _patches.move_pixels(images, offsets)

    def apply_mask(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        # The same swap as the pixels, integer labels moved as they are.
        return self.apply(masks, params)
