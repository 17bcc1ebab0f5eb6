"""GridMask: mask a regular grid of squares (Chen et al., 2020)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.geometry import ceil_product_table, rotation_range, unit_pixels_bounds
from maskmix.params import RANDOM_GRID_MASK, given_arguments

from . import _sampling
from ._base import CommonOptions, MaskingLayer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomGridMask"]


@keras.saving.register_keras_serializable(package="maskmix")
class RandomGridMask(MaskingLayer):
    """Mask a regular grid of squares with a random unit size, offset and rotation per image.

    Paper: P. Chen, S. Liu, H. Zhao and J. Jia, "GridMask Data Augmentation", 2020
    (https://arxiv.org/abs/2001.04086).

    Shapes:
        ``(B, H, W, C)`` or ``(H, W, C)`` (channels_first: ``(B, C, H, W)``/``(C, H, W)``) in,
        same shape and dtype out.

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
    centre (floored). Same rule as :class:`maskmix.torch.RandomGridMask`.

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
        **common: common options and layer arguments; see :class:`~maskmix.keras.MaskingLayer` (and fills).

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomGridMask
        >>> images = np.random.rand(8, 64, 64, 3).astype("float32")
        >>> out = RandomGridMask(unit_length=(0.2, 0.5), rotation=360, seed=0)(images)
        >>> tuple(out.shape)
        (8, 64, 64, 3)
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

    def sample_region(self, batch_size: Any, height: int, width: int, seed: Any) -> dict[str, Any]:
        ops = self.ops
        size = (batch_size,)
        shortest = _sampling.int_minimum(ops, height, width)
        if self.unit_pixels is not None:
            lo, hi = self.unit_pixels
            top = shortest - 1 if hi is None else _sampling.int_minimum(ops, hi, shortest - 1)
            unit = _sampling.randint(ops, lo, _sampling.int_maximum(ops, lo, top), size, seed)
        else:
            unit_fraction = _sampling.uniform(ops, *self.unit_length, size, seed)
            unit = ops.cast(ops.numpy.round(unit_fraction * ops.cast(shortest, "float32")), "int32")
            unit = ops.numpy.maximum(unit, 2)
        if self.kept_ratio is not None:
            masked = unit - self._kept_band(unit, height, width)
        else:
            ratio = _sampling.uniform(ops, *self.masked_ratio, size, seed)
            masked = ops.cast(ops.numpy.round(ratio * ops.cast(unit, "float32")), "int32")
            masked = ops.numpy.minimum(ops.numpy.maximum(masked, 1), unit - 1)
        offset_y, offset_x = _sampling.randints(ops, [(0, unit - 1), (0, unit - 1)], size, seed)
        params = {"unit": unit, "masked": masked, "offset_y": offset_y, "offset_x": offset_x}
        if self.rotation > 0:
            if self.whole_degrees:
                degrees = _sampling.randint(ops, 0, math.ceil(self.rotation) - 1, size, seed)
                params["angle"] = ops.cast(degrees, "float32") * (math.pi / 180.0)
            else:
                params["angle"] = _sampling.uniform(ops, *rotation_range(self.rotation), size, seed)
        return params

    def _kept_band(self, unit: Any, height: Any, width: Any) -> Any:
        """``ceil(kept_ratio * d)`` per image, as Python computes it (float64).

        With a static image size the largest unit is known and the bands come from a host table
        (exact on every backend, JAX without x64 included); otherwise the product is made in
        float64 on the device.
        """
        ops = self.ops
        assert self.kept_ratio is not None
        if isinstance(height, int) and isinstance(width, int):
            if self.unit_pixels is not None:
                largest = unit_pixels_bounds(self.unit_pixels, height, width)[1]
            else:
                largest = max(min(height, width), 2)
            table = ops.convert_to_tensor(ceil_product_table(self.kept_ratio, largest), dtype="int32")
            return ops.numpy.take(table, unit)
        return ops.cast(ops.numpy.ceil(ops.cast(unit, "float64") * self.kept_ratio), "int32")

    def region_mask(self, params: Mapping[str, Any], height: int, width: int) -> Any:
        ops = self.ops

        def col(name: str) -> Any:
            return ops.numpy.reshape(params[name], (-1, 1, 1))

        unit, masked, oy, ox = col("unit"), col("masked"), col("offset_y"), col("offset_x")
        if "angle" not in params:
            ys = ops.numpy.reshape(ops.numpy.arange(height, dtype="int32"), (1, -1, 1))
            xs = ops.numpy.reshape(ops.numpy.arange(width, dtype="int32"), (1, 1, -1))
        else:
            angle = col("angle")
            cos, sin = ops.numpy.cos(angle), ops.numpy.sin(angle)
            cy = (ops.cast(height, "float32") - 1.0) / 2.0
            cx = (ops.cast(width, "float32") - 1.0) / 2.0
            fy = ops.numpy.reshape(ops.numpy.arange(height, dtype="float32"), (1, -1, 1)) - cy
            fx = ops.numpy.reshape(ops.numpy.arange(width, dtype="float32"), (1, 1, -1)) - cx
            xs = ops.cast(ops.numpy.floor(cos * fx + sin * fy), "int32")
            ys = ops.cast(ops.numpy.floor(cos * fy - sin * fx), "int32")
        rows = ops.numpy.mod(ys + oy, unit) < masked
        cols = ops.numpy.mod(xs + ox, unit) < masked
        squares = ops.numpy.logical_and(rows, cols)
        # invert: the bands between the squares (the official mode=0).
        return ops.numpy.logical_not(squares) if self.invert else squares
