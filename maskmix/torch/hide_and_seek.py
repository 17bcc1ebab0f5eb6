"""Hide-and-Seek: split the image into a grid and hide random cells (Singh et al., 2018)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from typing_extensions import Unpack

from maskmix.params import RANDOM_HIDE_AND_SEEK, given_arguments

from . import _sampling
from ._base import CommonOptions, MaskingTransform

__all__ = ["RandomHideAndSeek"]


def _lowest_cells(scores: Tensor, count: Tensor, most: int) -> Tensor:
    """Boolean ``(B, N)``: True on the ``count[b]`` lowest of each row of ``scores`` ``(B, N)``,
    for counts of at most ``most`` (a Python bound).

    The ``min(most, N)`` lowest of each row, in order, by one ``topk`` (a partial sort: a fraction
    of a full sort's host time for the few cells Hide-and-Seek hides), and the first ``count``
    of them scattered back to their cells.
    """
    lowest = scores.topk(min(most, scores.shape[1]), dim=1, largest=False)[1]
    first = _sampling.cached_arange(lowest.shape[1], scores.device) < count.view(-1, 1)
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(1, lowest, first)


class RandomHideAndSeek(MaskingTransform):
    """Split each image into a grid of cells and hide a random subset of them.

    Paper: K. K. Singh, H. Yu, A. Sarmasi, G. Pradeep and Y. J. Lee, "Hide-and-Seek: A Data
    Augmentation Technique for Weakly-Supervised Localization and Beyond", 2018
    (https://arxiv.org/abs/1811.02545), after K. K. Singh and Y. J. Lee, "Hide-and-Seek: Forcing
    a Network to be Meticulous for Weakly-supervised Object and Action Localization", ICCV 2017.

    Shapes:
        ``(..., C, H, W)`` in, same shape, dtype and device out.

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
        **common: common options; see :class:`~maskmix.torch.MaskingTransform`, which lists the fills.

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomHideAndSeek
        >>> images = torch.rand(8, 3, 64, 64)
        >>> out = RandomHideAndSeek(grid_size=[2, 4, 8], hide_prob=0.5)(images)
        >>> out.shape
        torch.Size([8, 3, 64, 64])
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

    def sample_region(self, batch_size: int, height: int, width: int, *, device: torch.device,
                      generator: torch.Generator | None) -> dict[str, Tensor]:
        if self._one_grid():
            return self._sample_one_grid(batch_size, height, width, device=device, generator=generator)
        row_options, col_options = self.grid_options(height, width)
        choice = _sampling.randint(0, len(row_options) - 1, (batch_size,), device=device, generator=generator)
        rows = _sampling.pick(row_options, choice)
        cols = _sampling.pick(col_options, choice)
        # Cells live on a (max_rows, max_cols) lattice; those outside an image's own grid are invalid.
        max_rows, max_cols = max(max(row_options), 1), max(max(col_options), 1)
        valid = (_sampling.cached_arange(max_rows, device).view(1, -1, 1) < rows.view(-1, 1, 1)) & (
            _sampling.cached_arange(max_cols, device).view(1, 1, -1) < cols.view(-1, 1, 1)
        )
        scores = _sampling.rand((batch_size, max_rows, max_cols), device=device, generator=generator)
        if self.hide_prob is not None:
            hidden = (scores < self.hide_prob) & valid
        else:
            lo, hi = self.erased_patches
            count = _sampling.randint(lo, hi, (batch_size,), device=device, generator=generator)
            count = torch.minimum(count, rows * cols)
            # Invalid cells rank last; the `count` lowest-ranked valid cells are hidden.
            hidden = _lowest_cells(torch.where(valid, scores, 2.0).flatten(1), count, hi).view(scores.shape)
        params = {"rows": rows, "cols": cols, "hidden": hidden}
        if self.cell_size is not None:
            params["cell"] = _sampling.pick(self.cell_size, choice)
        return params

    def _one_grid(self) -> bool:
        """One ``grid_size`` and no ``cell_size`` (the default): every image has the same grid, so
        nothing is drawn for it, every cell of the lattice is valid and each pixel's cell is known
        on the host."""
        return self.cell_size is None and len(self.grid_size) == 1

    def _sample_one_grid(self, batch_size: int, height: int, width: int, *, device: torch.device,
                         generator: torch.Generator | None) -> dict[str, Tensor]:
        """:meth:`sample_region` for :meth:`_one_grid`: the same law with the grid as constants."""
        (rows,), (cols,) = self.grid_options(height, width)
        scores = _sampling.rand((batch_size, rows, cols), device=device, generator=generator)
        if self.hide_prob is not None:
            hidden = scores < self.hide_prob
        else:
            lo, hi = self.erased_patches
            count = _sampling.randint(lo, hi, (batch_size,), device=device, generator=generator)
            # At most every cell: a count above rows * cols hides them all, as the cap would.
            hidden = _lowest_cells(scores.view(batch_size, rows * cols), count, hi).view(batch_size, rows, cols)
        return {"rows": _sampling.cached_constant((rows,), torch.int64, device).expand(batch_size),
                "cols": _sampling.cached_constant((cols,), torch.int64, device).expand(batch_size),
                "hidden": hidden}

    def grid_options(self, height: int, width: int) -> tuple[list[int], list[int]]:
        """The candidate ``rows`` and ``cols`` counts: ``grid_size``'s, at most one cell per pixel
        (a grid finer than the image would have empty cells, and hiding one would change
        nothing), or those of cells of ``cell_size`` pixels with a partial last cell
        (``ceil(H / s)``; 0 for ``s = 0``)."""
        if self.cell_size is None:
            return ([min(rows, max(height, 1)) for rows, _ in self.grid_size],
                    [min(cols, max(width, 1)) for _, cols in self.grid_size])
        return ([-(-height // side) if side else 0 for side in self.cell_size],
                [-(-width // side) if side else 0 for side in self.cell_size])

    @staticmethod
    def _cell_index(size: int, cells: Tensor) -> Tensor:
        """``(..., size)`` index of the cell of each pixel, for boundaries ``floor(i * size / cells)``
        (``cells`` shaped ``(...)``).

        Pixel ``p`` lies in cell ``i`` iff ``floor(i size / n) <= p < floor((i + 1) size / n)``,
        i.e. ``i = ceil((p + 1) n / size) - 1``, computed in exact integer arithmetic.
        """
        # Positions 1..size as (p + 1): the cached 0..size-1 with the 1 folded into the constant.
        positions = _sampling.cached_arange(size, cells.device)
        return ((positions + 1) * cells.unsqueeze(-1) + (size - 1)) // size - 1

    @staticmethod
    def _pixel_cells(size: int, side: Tensor, cells: int) -> Tensor:
        """``(B, size)`` index ``p // side`` of the cell of each pixel, for cells from (0, 0).

        A side of 0 (no hiding: no valid cell) maps every pixel to cell 0, which is not hidden;
        the clamp keeps the index inside the ``cells``-long lattice.
        """
        positions = _sampling.cached_arange(size, side.device).view(1, -1)
        return (positions // side.clamp_min(1).view(-1, 1)).clamp_max(cells - 1)

    def region_keep(self, params: Mapping[str, Any], height: int, width: int, dtype: torch.dtype, *,
                    within: Tensor | None = None) -> Tensor:
        rows, cols, hidden = params["rows"], params["cols"], params["hidden"]
        device = hidden.device
        if self._one_grid():
            # The same grid for every image: each pixel's cell is a constant of (size, cells), and
            # the pixels' cells are two index_selects of the cells (far less host time than one
            # broadcast advanced index).
            (grid_rows,), (grid_cols,) = self.grid_options(height, width)
            kept = (~self._hidden_within(hidden, within)).to(dtype)
            return kept.index_select(1, _lattice_cells(height, grid_rows, device)).index_select(
                2, _lattice_cells(width, grid_cols, device))
        if "cell" in params:
            row_cell = self._pixel_cells(height, params["cell"], hidden.shape[1])
            col_cell = self._pixel_cells(width, params["cell"], hidden.shape[2])
        elif height == width:
            # Rows and columns of a square image in one (2, B, H) pass.
            row_cell, col_cell = self._cell_index(height, torch.stack((rows, cols))).unbind(0)
        else:
            row_cell = self._cell_index(height, rows)
            col_cell = self._cell_index(width, cols)
        kept = (~self._hidden_within(hidden, within)).to(dtype)
        # Two gathers with broadcast (stride-0) indices: rows, then columns, without materialising
        # (B, H, W) indices (and far less host time than one broadcast advanced index).
        batch, _, grid_cols = kept.shape
        kept = kept.gather(1, row_cell.unsqueeze(-1).expand(batch, height, grid_cols))
        return kept.gather(2, col_cell.unsqueeze(1).expand(batch, height, width))

    @staticmethod
    def _hidden_within(hidden: Tensor, within: Tensor | None) -> Tensor:
        """The hidden cells of the images ``within`` selects (none elsewhere), on the cells, not the pixels."""
        return hidden if within is None else _sampling.mask_and(hidden, within.view(-1, 1, 1))


def _lattice_cells(size: int, cells: int, device: torch.device) -> Tensor:
    """``(size,)`` cell index of each pixel for ``cells`` cells of boundaries ``floor(i * size / cells)``
    (:meth:`RandomHideAndSeek._cell_index` of a constant count), built once per (size, cells,
    device) in eager mode, in Python integers (exact): never write into it."""
    return _sampling.cached_constant(_lattice_index(size, cells), torch.int64, device)


@_sampling.host_cached(maxsize=64)
def _lattice_index(size: int, cells: int) -> tuple[int, ...]:
    """The values of :func:`_lattice_cells`, computed once per (size, cells)."""
    return tuple(((p + 1) * cells + size - 1) // size - 1 for p in range(size))
