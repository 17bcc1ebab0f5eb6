"""Hide-and-Seek: split the image into a grid and hide random cells (Singh et al., 2018)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.params import RANDOM_HIDE_AND_SEEK, given_arguments

from . import _sampling
from ._base import CommonOptions, MaskingLayer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomHideAndSeek"]


@keras.saving.register_keras_serializable(package="maskmix")
class RandomHideAndSeek(MaskingLayer):
    """Split each image into a grid of cells and hide a random subset of them.

    Paper: K. K. Singh, H. Yu, A. Sarmasi, G. Pradeep and Y. J. Lee, "Hide-and-Seek: A Data
    Augmentation Technique for Weakly-Supervised Localization and Beyond", 2018
    (https://arxiv.org/abs/1811.02545), after K. K. Singh and Y. J. Lee, "Hide-and-Seek: Forcing
    a Network to be Meticulous for Weakly-supervised Object and Action Localization", ICCV 2017.

    Shapes:
        ``(B, H, W, C)`` or ``(H, W, C)`` (channels_first: ``(B, C, H, W)``/``(C, H, W)``) in,
        same shape and dtype out.

    Per image: pick a grid ``(rows, cols)`` uniformly among the ``grid_size`` candidates, each
    capped at one cell per pixel (``min(rows, H)``, ``min(cols, W)``: a finer grid would have
    empty cells, and hiding one would leave the image unchanged). Cell ``(i, j)`` covers rows
    ``floor(i H / rows) <= y < floor((i + 1) H / rows)`` and the like for columns, so the cells
    tile the whole image even when ``H`` is not a multiple of ``rows``.
    With ``cell_size`` set, a side ``s`` in pixels is picked uniformly among its candidates
    instead and cell ``(i, j)`` covers rows ``i s <= y < (i + 1) s`` (and the like for columns)
    from ``(0, 0)``: ``ceil(H / s)`` rows of cells, the last one partial; ``s = 0`` hides
    nothing.
    Without ``hide_prob``, draw a count ``n`` uniformly in ``erased_patches`` (capped at the number
    of cells) and hide ``n`` distinct cells chosen uniformly; with ``hide_prob`` set, hide each
    cell independently with that probability.

    Reproducing the paper: ``RandomHideAndSeek.from_paper("imagenet")`` is the official
    ``hide_patch.py``: a cell side drawn per image among 0, 16, 32, 44 and 56 pixels
    (``cell_size=[0, 16, 32, 44, 56]``; a side of 44 has no cell count on 224-pixel images),
    each cell hidden with probability 0.5 (``hide_prob=0.5``), filled with 0 on normalised
    images (the paper's dataset mean).

    Args:
        grid_size: ``n`` for an ``n x n`` grid, a tuple ``(rows, cols)``, or a list of such
            candidates, one drawn per image (e.g. ``[4, 8, (8, 16)]``). Default ``(8, 8)``. Not
            used when ``cell_size`` is set.
        erased_patches: number of hidden cells: an int >= 0 or a range ``(lo, hi)`` drawn
            uniformly per image. Default ``(0, 5)``. Ignored when ``hide_prob`` is set.
        hide_prob: probability in (0, 1) of hiding each cell, or None. Default None.
        cell_size: cell side in pixels (an int >= 0) or a list of candidates, one drawn per
            image; 0 hides nothing. Default None (``grid_size`` is used).
        fill_method: what hidden cells show; default ``"black"``.
        **common: common options and layer arguments; see :class:`~maskmix.keras.MaskingLayer` (and fills).

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomHideAndSeek
        >>> images = np.random.rand(8, 64, 64, 3).astype("float32")
        >>> out = RandomHideAndSeek(grid_size=[2, 4, 8], hide_prob=0.5, seed=0)(images)
        >>> tuple(out.shape)
        (8, 64, 64, 3)
    """

    spec = RANDOM_HIDE_AND_SEEK
    grid_size: tuple[tuple[int, int], ...]
    erased_patches: tuple[int, int]
    hide_prob: float | None
    cell_size: tuple[int, ...] | None

    def __init__(
        self,
        *,
        grid_size: int | tuple[int, int] | list[int | tuple[int, int]] = (8, 8),
        erased_patches: int | tuple[int, int] = (0, 5),
        hide_prob: float | None = None,
        cell_size: int | list[int] | tuple[int, ...] | None = None,
        fill_method: str | float | tuple[float, ...] = "black",
        mask_fill: int | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def sample_region(self, batch_size: Any, height: int, width: int, seed: Any) -> dict[str, Any]:
        ops = self.ops
        candidates = len(self.grid_size) if self.cell_size is None else len(self.cell_size)
        if self.hide_prob is None:  # the number of hidden cells is drawn with the grid
            choice, count = _sampling.randints(ops, [(0, candidates - 1), self.erased_patches], (batch_size,), seed)
        else:
            choice = _sampling.randint(ops, 0, candidates - 1, (batch_size,), seed)
        cell = None
        if self.cell_size is None:
            row_options = [rows for rows, _ in self.grid_size]
            col_options = [cols for _, cols in self.grid_size]
            # At most one cell per pixel (a finer grid has empty cells: hiding one changes nothing);
            # H and W may be tensors in a graph, so the drawn counts are capped, not the options
            # (int32: the lattice comparisons below are int32 whatever floatx is).
            rows = ops.numpy.minimum(_sampling.pick(ops, row_options, choice), _sampling.int_maximum(ops, height, 1))
            cols = ops.numpy.minimum(_sampling.pick(ops, col_options, choice), _sampling.int_maximum(ops, width, 1))
            max_rows, max_cols = max(row_options), max(col_options)
        else:
            # Cells of `cell` pixels from (0, 0), the last one partial: ceil(H / cell) rows (0 for a
            # side of 0, which hides nothing). H and W may be tensors in a graph.
            cell = _sampling.pick(ops, self.cell_size, choice)
            rows, cols = self._cells_across(height, cell), self._cells_across(width, cell)
            smallest = min([side for side in self.cell_size if side > 0], default=0)
            max_rows = self._cells_across(height, smallest) if smallest else 1
            max_cols = self._cells_across(width, smallest) if smallest else 1
        # Cells live on a (max_rows, max_cols) lattice; those outside an image's own grid are invalid.
        row_ok = ops.numpy.reshape(ops.numpy.arange(max_rows, dtype="int32"), (1, -1, 1)) < ops.numpy.reshape(
            rows, (-1, 1, 1)
        )
        col_ok = ops.numpy.reshape(ops.numpy.arange(max_cols, dtype="int32"), (1, 1, -1)) < ops.numpy.reshape(
            cols, (-1, 1, 1)
        )
        valid = ops.numpy.logical_and(row_ok, col_ok)
        scores = ops.random.uniform((batch_size, max_rows, max_cols), 0.0, 1.0, dtype="float32", seed=seed)
        if self.hide_prob is not None:
            hidden = ops.numpy.logical_and(scores < self.hide_prob, valid)
            count = ops.numpy.sum(ops.cast(hidden, "int32"), axis=(1, 2))
        else:
            count = ops.numpy.minimum(count, rows * cols)
            # Invalid cells rank last; the `count` lowest-ranked valid cells are hidden.
            keyed = ops.numpy.reshape(
                _sampling.where(ops, valid, scores, ops.numpy.full_like(scores, 2.0)), (-1, max_rows * max_cols)
            )
            ranked = ops.cast(ops.numpy.argsort(ops.numpy.argsort(keyed, axis=1), axis=1), "int32")
            hidden = ops.numpy.reshape(ranked < ops.numpy.expand_dims(count, 1), (-1, max_rows, max_cols))
        params = {"rows": rows, "cols": cols, "hidden": hidden, "count": count}
        if cell is not None:
            params["cell"] = cell
        return params

    def _cells_across(self, size: Any, side: Any) -> Any:
        """``ceil(size / side)`` cells of ``side`` pixels (0 where ``side`` is 0); ints stay ints."""
        if isinstance(size, int) and isinstance(side, int):
            return -(-size // side) if side else 0
        ops = self.ops
        safe = ops.numpy.maximum(side, 1)
        return _sampling.where(ops, side > 0, ops.numpy.floor_divide(size + safe - 1, safe), 0)

    def _pixel_cells(self, size: Any, side: Any, cells: Any) -> Any:
        """``(B, size)`` index ``p // side`` of the cell of each pixel, for cells from (0, 0).

        A side of 0 (no valid cell: nothing hidden) maps every pixel to cell 0; the minimum keeps
        the index inside the ``cells``-long lattice.
        """
        ops = self.ops
        positions = ops.numpy.reshape(ops.numpy.arange(size, dtype="int32"), (1, -1))
        index = ops.numpy.floor_divide(positions, ops.numpy.reshape(ops.numpy.maximum(side, 1), (-1, 1)))
        return ops.numpy.minimum(index, cells - 1)

    def _cell_index(self, size: int, cells: Any) -> Any:
        """``(B, size)`` index of the cell of each pixel, for boundaries ``floor(i * size / cells)``.

        Pixel ``p`` lies in cell ``i`` iff ``floor(i size / n) <= p < floor((i + 1) size / n)``,
        i.e. ``i = ceil((p + 1) n / size) - 1``, computed in exact integer arithmetic.
        """
        ops = self.ops
        positions = ops.numpy.reshape(ops.numpy.arange(1, size + 1, dtype="int32"), (1, -1))
        return ops.numpy.floor_divide(positions * ops.numpy.reshape(cells, (-1, 1)) + (size - 1), size) - 1

    def region_mask(self, params: Mapping[str, Any], height: int, width: int) -> Any:
        ops = self.ops
        rows, cols, hidden = params["rows"], params["cols"], params["hidden"]
        max_rows, max_cols = ops.shape(hidden)[1], ops.shape(hidden)[2]
        if "cell" in params:
            row_cell = self._pixel_cells(height, params["cell"], max_rows)  # (B, H)
            col_cell = self._pixel_cells(width, params["cell"], max_cols)  # (B, W)
        else:
            row_cell = self._cell_index(height, rows)  # (B, H)
            col_cell = self._cell_index(width, cols)  # (B, W)
        # mask[b, y, x] = hidden[b, row_cell[b, y], col_cell[b, x]] as two batched products with
        # one-hot matrices, (B, H, R) @ (B, R, C) @ (B, C, W): every sum has exactly one term 0 or 1,
        # so the result is exact in any float precision. A per-pixel gather gives the same mask,
        # but XLA fuses it into the fill's `where` and recomputes it per element (about 100x slower
        # under jit_compile on CPU).
        row_onehot = ops.nn.one_hot(row_cell, max_rows, dtype="float32")
        col_onehot = ops.nn.one_hot(col_cell, max_cols, dtype="float32")
        per_row = ops.numpy.matmul(row_onehot, ops.cast(hidden, "float32"))  # (B, H, C)
        return ops.numpy.matmul(per_row, ops.numpy.swapaxes(col_onehot, 1, 2)) > 0.5
