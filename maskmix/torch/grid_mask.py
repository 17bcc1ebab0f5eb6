"""GridMask: mask a regular grid of squares (Chen et al., 2020)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from typing_extensions import Unpack

from maskmix.geometry import rotation_range, unit_pixels_bounds
from maskmix.params import RANDOM_GRID_MASK, given_arguments

from . import _patches, _sampling
from ._base import CommonOptions, MaskingTransform

__all__ = ["RandomGridMask"]


class RandomGridMask(MaskingTransform):
    """Mask a regular grid of squares with a random unit size, offset and rotation per image.

    Paper: P. Chen, S. Liu, H. Zhao and J. Jia, "GridMask Data Augmentation", 2020
    (https://arxiv.org/abs/2001.04086).

    Shapes:
        ``(..., C, H, W)`` in, same shape, dtype and device out.

    Per image: the unit side ``d`` is drawn uniformly over the integers of ``unit_pixels`` when
    it is set (``lo`` to ``min(hi, min(H, W) - 1)``, never below ``lo``), else ``d = round(u *
    min(H, W))`` (at least 2) for a fraction ``u`` uniform in ``unit_length``. The masked
    square's side is ``l = d - ceil(kept_ratio * d)`` when ``kept_ratio`` is set (computed as
    Python computes it, in float64), else ``l = round(m * d)`` clamped to ``[1, d - 1]`` for a
    ratio ``m`` uniform in ``masked_ratio``. Offsets ``oy, ox`` are uniform in
    ``{0, ..., d - 1}``. Without rotation, pixel ``(y, x)`` is masked iff ``(y + oy) mod d < l``
    and ``(x + ox) mod d < l``: the masked fraction is about ``(l / d)^2``; ``invert=True`` masks
    the other pixels (the bands between the squares). With ``rotation`` set, an angle ``t`` is
    drawn uniformly in ``[-rotation, rotation]`` degrees (``whole_degrees=True``: a whole number
    of degrees uniform in ``{0, ..., ceil(rotation) - 1}``, the official ``randint(rotate)``) and
    the same test is made on the pixel centre's coordinates rotated by ``t`` about the image
    centre (floored).

    Reproducing the paper: ``RandomGridMask.from_paper("imagenet")`` is the official ImageNet code
    as released with the paper (``imagenet_grid/utils/grid.py`` of January 2020 with
    ``imagenet_amp.py``'s defaults): ``d`` uniform in ``randint(96, 224)`` (``unit_pixels=(96,
    223)``), kept band ``int(0.6 d + 0.5)``, so squares of ``round(0.4 d)`` pixels
    (``masked_ratio=0.4``; the file's later ``ceil(0.6 d)`` is ``kept_ratio=0.6``, squares one pixel
    smaller for 51 of the 128 units), whole-degree rotation in ``randint(360)``, the squares erased
    (the official ``mode=1``; ``invert=True`` is ``mode=0``), filled with 0 on normalised images,
    per image with probability 0.8. The official probability ramps up as ``0.8 * min(1, epoch /
    240)`` (``grid.set_prob(epoch, 240)`` at each epoch start): give the integration that schedule,
    ``schedules={"RandomGridMask": {"augmentation_ratio": ramp(0.0, 0.8, epochs=240)}}`` with
    ``maskmix.schedules.ramp`` (``MaskMixCallback``, ``MaskMixModel``, ``MaskMixPipeline``).
    ``from_paper("detection")`` is the COCO setting (``d`` in ``randint(2, min(H, W))``, ratio 0.5,
    no rotation, probability 0.7 throughout, as the released configs run it); the official detection
    loop leaves the canvas above and left of its first band and past its last one unbanded, which
    this periodic grid does not reproduce.

    Args:
        unit_length: grid unit side as a fraction of ``min(H, W)``: a float in (0, 1] or a range
            ``(lo, hi)``. Default ``(0.2, 0.4)``. Not used when ``unit_pixels`` is set.
        masked_ratio: masked square side divided by the unit side: a float in (0, 1) or a range.
            Default 0.5. Not used when ``kept_ratio`` is set.
        rotation: maximum rotation in degrees, in ``[0, 360]``. Default 0.
        unit_pixels: unit side in pixels: an int >= 2, a pair ``(lo, hi)``, or ``(lo, None)``
            (up to ``min(H, W) - 1``); None (default) uses ``unit_length``.
        kept_ratio: the official ratio ``r`` in (0, 1): the kept band of each unit is
            ``ceil(r d)`` pixels. Default None (``masked_ratio`` is used).
        whole_degrees: draw the angle as the official code does (see above). Default False.
        invert: mask the bands instead of the squares. Default False.
        fill_method: fill of the masked pixels of the grid; default ``"black"``.
        **common: common options; see :class:`~maskmix.torch.MaskingTransform`, which lists the fills.

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomGridMask
        >>> images = torch.rand(8, 3, 64, 64)
        >>> out = RandomGridMask(unit_length=(0.2, 0.5), rotation=360)(images)
        >>> out.shape
        torch.Size([8, 3, 64, 64])
    """

    spec = RANDOM_GRID_MASK
    unit_length: tuple[float, float]
    masked_ratio: tuple[float, float]
    rotation: float
    unit_pixels: tuple[int, int | None] | None
    kept_ratio: float | None
    whole_degrees: bool
    invert: bool

    def __init__(
        self,
        *,
        unit_length: float | tuple[float, float] = (0.2, 0.4),
        masked_ratio: float | tuple[float, float] = 0.5,
        rotation: float = 0.0,
        unit_pixels: int | tuple[int, int | None] | None = None,
        kept_ratio: float | None = None,
        whole_degrees: bool = False,
        invert: bool = False,
        fill_method: str | float | tuple[float, ...] = "black",
        mask_fill: int | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def sample_region(self, batch_size: int, height: int, width: int, *, device: torch.device,
                      generator: torch.Generator | None) -> dict[str, Tensor]:
        size = (batch_size,)
        if self.unit_pixels is not None:
            low, high = unit_pixels_bounds(self.unit_pixels, height, width)
            unit = _sampling.randint(low, high, size, device=device, generator=generator)
            largest = max(low, high)
        else:
            side = min(height, width)
            unit_fraction = _sampling.uniform(*self.unit_length, size, device=device, generator=generator)
            unit = torch.round(unit_fraction * float(side)).to(torch.int64)
            if self.unit_length[0] * side < 2:  # else every rounded unit is already 2 or more
                unit = unit.clamp_min(2)
            largest = max(side, 2)
        if self.kept_ratio is not None:
            # ceil(r d) in float64, as Python computes it (a float32 product can round past an integer).
            kept = torch.ceil(unit.to(torch.float64) * self.kept_ratio).to(torch.int64)
            masked = unit - kept
        else:
            lo, hi = self.masked_ratio
            if lo == hi and not torch.compiler.is_compiling():
                # A fixed ratio (the default): each unit's masked side, bounds included, is read
                # from a table of every unit (one kernel instead of three to five).
                masked = _masked_sides(lo, largest, device).index_select(0, unit)
            else:
                # A fixed ratio multiplies as a number: nothing to draw (compiled, this fuses).
                ratio = lo if lo == hi else _sampling.uniform(lo, hi, size, device=device, generator=generator)
                masked = _bounded_masked_side(torch.round(unit * ratio).to(torch.int64), unit)
        # Both offsets uniform in {0, ..., d - 1} in one draw, rows and columns in the last dim:
        # floor(U d) for U uniform in [0, 1) in float64 (below d for every unit under 2 ** 52).
        u = torch.rand((batch_size, 2), device=device, dtype=torch.float64, **_sampling.drawing_from(generator))
        offsets = (u * unit.unsqueeze(-1)).to(torch.int64)
        offset_y, offset_x = offsets.unbind(-1)  # one call for both views (indexing costs host time)
        params = {"unit": unit, "masked": masked, "offsets": offsets, "offset_y": offset_y, "offset_x": offset_x}
        if self.rotation > 0:
            if self.whole_degrees:
                degrees = _sampling.randint(0, math.ceil(self.rotation) - 1, size, device=device, generator=generator)
                params["angle"] = torch.deg2rad(degrees.to(torch.float32))
            else:
                params["angle"] = _sampling.uniform(*rotation_range(self.rotation), size, device=device,
                                                    generator=generator)
        return params

    def region_keep(self, params: Mapping[str, Any], height: int, width: int, dtype: torch.dtype, *,
                    within: Tensor | None = None) -> Tensor:
        unit, masked = params["unit"], params["masked"]
        if within is not None:
            # An unselected image gets bands that erase nothing: none (squares erased) or bands
            # covering the whole unit (bands erased, invert): one op on (B,) instead of a pass
            # over the (B, H, W) mask.
            masked = torch.where(within, masked, unit) if self.invert else masked * within
        if "angle" not in params:
            # Rows ([:, 0]) and columns ([:, 1]) in one (B, 2, max(H, W)) pass.
            positions = _sampling.cached_arange(max(height, width), unit.device)
            phase = (positions + params["offsets"].unsqueeze(-1)) % unit.view(-1, 1, 1)
            rows, cols = _sampling.split_lines(self._kept_bands(phase, masked.view(-1, 1, 1)).to(dtype),
                                               height, width)
            rows, cols = rows.unsqueeze(-1), cols.unsqueeze(-2)
            return rows & cols if self.invert else rows | cols
        device = unit.device
        angle = params["angle"].view(-1, 1, 1)
        cos, sin = torch.cos(angle), torch.sin(angle)
        ys = _sampling.cached_arange(height, device, torch.float32).view(1, -1, 1) - (height - 1) / 2
        xs = _sampling.cached_arange(width, device, torch.float32).view(1, 1, -1) - (width - 1) / 2
        # The grid arithmetic stays in float32 (half the bytes of int64 per pixel): the operands
        # are integers far below 2**24, so sums and remainders are exact.
        grid = torch.stack((unit, masked, params["offset_y"], params["offset_x"])).to(torch.float32).view(4, -1, 1, 1)
        unit_f, masked_f, oy, ox = grid.unbind(0)
        # Each (B, H, W) coordinate is a fresh float32 buffer that only its bands read: floor, shift
        # and wrap it in place (the values of floor, + and %), and reduce it to booleans before the
        # other one is made. One float buffer is alive at a time instead of four.
        cols = self._kept_bands(torch.add(cos * xs, sin * ys).floor_().add_(ox).remainder_(unit_f), masked_f)
        rows = self._kept_bands(torch.sub(cos * ys, sin * xs).floor_().add_(oy).remainder_(unit_f), masked_f)
        return (rows & cols if self.invert else rows | cols).to(dtype)

    def _kept_bands(self, phase: Tensor, masked: Tensor) -> Tensor:
        """Where the rows (or columns) of ``phase`` lie in the band a pixel is kept by: outside the
        masked band (a pixel is kept when its row or its column is), or inside it (``invert``:
        a pixel is kept when both are)."""
        return phase < masked if self.invert else phase >= masked


def _bounded_masked_side(masked: Tensor, unit: Tensor) -> Tensor:
    """The masked side kept in ``[1, d - 1]``: every unit keeps a band of each kind."""
    return torch.minimum(masked.clamp_min(1), unit - 1)


def _masked_sides(ratio: float, largest: int, device: torch.device) -> Tensor:
    """Int64 ``(largest + 1,)`` table: entry ``d`` is the bounded masked side of a unit of ``d``
    pixels at a fixed ``ratio``, computed by the very ops a call would run on the units (the same
    values), once per ratio, size and device (``_patches.kept``)."""
    def build() -> Tensor:
        units = torch.arange(largest + 1, device=device)
        return _bounded_masked_side(torch.round(units * ratio).to(torch.int64), units)

    return _patches.kept(("gridmask_masked_sides", ratio, largest), device, build)
