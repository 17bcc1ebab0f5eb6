"""Cutout: erase one square per image (DeVries & Taylor, 2017)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.params import RANDOM_CUTOUT, given_arguments

from . import _sampling
from ._base import CommonOptions, MaskingLayer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomCutout"]


@keras.saving.register_keras_serializable(package="maskmix")
class RandomCutout(MaskingLayer):
    """Erase one square of a given area per image.

    Paper: T. DeVries and G. W. Taylor, "Improved Regularization of Convolutional Neural Networks
    with Cutout", 2017 (https://arxiv.org/abs/1708.04552).

    Shapes:
        ``(B, H, W, C)`` or ``(H, W, C)`` (channels_first: ``(B, C, H, W)``/``(C, H, W)``) in,
        same shape and dtype out.

    Per image, for each of ``n`` squares (``n`` drawn uniformly in ``patch_count``, each square
    drawn and placed independently; they may overlap): the side is ``L`` pixels drawn uniformly
    in ``patch_side`` when it is set, else ``round(sqrt(a * H * W))`` (at least 1) for an area
    fraction ``a`` drawn uniformly in ``patch_area``. With ``allow_partial=False`` (default) the
    side is capped at ``min(H, W)`` and the square is placed uniformly so that it lies fully
    inside the image. With ``allow_partial=True`` its centre ``c`` is uniform over the image's
    pixels and the square ``[c - L//2, c - L//2 + L)`` is clipped at the border, so border squares
    erase fewer pixels. ``symmetric_box=True`` spans ``[c - L//2, c + L//2)`` instead, the
    official code's box: an odd side ``L`` erases ``2 * (L//2)`` pixels a side (inside the image
    too, where the square then has that side).

    Reproducing the paper: ``RandomCutout.from_paper("cifar10")`` (also ``"cifar100"``,
    ``"svhn"``) is the official ``util/cutout.py`` with the paper's lengths 16, 8 and 20:
    ``patch_side=L, allow_partial=True, symmetric_box=True, fill_method="zero"`` (the image is
    multiplied by the mask after normalisation, so erased pixels are 0, the dataset mean). The
    official ``n_holes`` is ``patch_count``.

    Args:
        patch_area: square area as a fraction of the image area: a float in (0, 1) or a range
            ``(lo, hi)`` drawn uniformly per square. Default 0.1. Not used when ``patch_side``
            is set.
        allow_partial: let the square cross the border (see above). Default False.
        patch_side: square side in pixels, an int >= 1 or a range ``(lo, hi)`` drawn uniformly
            per square, or None (the side comes from ``patch_area``). Default None.
        symmetric_box: the official box rule (see above). Default False.
        patch_count: squares per image, an int >= 1 or a range ``(lo, hi)``. Default 1.
        fill_method: fill of the erased square, default ``"black"``.
        **common: common options and layer arguments; see :class:`~maskmix.keras.MaskingLayer` (and fills).

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomCutout
        >>> images = np.random.rand(8, 32, 32, 3).astype("float32")
        >>> out = RandomCutout(patch_area=0.25, allow_partial=True, seed=0)(images)
        >>> tuple(out.shape)
        (8, 32, 32, 3)
    """

    spec = RANDOM_CUTOUT
    patch_area: tuple[float, float]
    allow_partial: bool
    patch_side: tuple[int, int] | None
    symmetric_box: bool
    patch_count: tuple[int, int]

    def __init__(
        self,
        *,
        patch_area: float | tuple[float, float] = 0.1,
        allow_partial: bool = False,
        patch_side: int | tuple[int, int] | None = None,
        symmetric_box: bool = False,
        patch_count: int | tuple[int, int] = 1,
        fill_method: str | float | tuple[float, ...] = "black",
        mask_fill: int | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def sample_region(self, batch_size: Any, height: int, width: int, seed: Any) -> dict[str, Any]:
        ops = self.ops
        lo_count, max_count = self.patch_count
        # One square per image keeps the (B,) draws of the single-square layer.
        shape = (batch_size,) if max_count == 1 else (batch_size, max_count)
        if self.patch_side is not None:
            side = _sampling.randint(ops, self.patch_side[0], self.patch_side[1], shape, seed)
        else:
            area = _sampling.uniform(ops, *self.patch_area, shape, seed)
            side = ops.cast(ops.numpy.round(ops.numpy.sqrt(area * ops.cast(height * width, "float32"))), "int32")
            side = ops.numpy.maximum(side, 1)
        if not self.allow_partial:
            side = ops.numpy.minimum(side, _sampling.int_minimum(ops, height, width))
        half = ops.numpy.floor_divide(side, 2)
        # The official rule [c - L//2, c + L//2) spans 2 * (L//2) pixels: one less for an odd side.
        extent = 2 * half if self.symmetric_box else side
        if not self.allow_partial:
            top, left = _sampling.place_inside(ops, extent, extent, height, width, seed)
            params = {"top": top, "left": left, "height": extent, "width": extent}
        else:
            center_y, center_x = _sampling.randints(ops, [(0, height - 1), (0, width - 1)], shape, seed)
            # The square [c - side//2, c - side//2 + extent), clipped to the image.
            y0, x0 = center_y - half, center_x - half
            top, left = ops.numpy.clip(y0, 0, height), ops.numpy.clip(x0, 0, width)
            bottom, right = ops.numpy.clip(y0 + extent, 0, height), ops.numpy.clip(x0 + extent, 0, width)
            params = {"top": top, "left": left, "height": bottom - top, "width": right - left}
        if max_count > 1:
            count = _sampling.randint(ops, lo_count, max_count, (batch_size,), seed)
            params["active"] = ops.numpy.arange(max_count, dtype="int32") < ops.numpy.expand_dims(count, 1)
        return params

    def region_mask(self, params: Mapping[str, Any], height: int, width: int) -> Any:
        ops = self.ops
        boxes = _sampling.box_mask_of(ops, params, height, width)
        if "active" not in params:
            return boxes
        active = ops.numpy.expand_dims(ops.numpy.expand_dims(params["active"], -1), -1)
        return ops.numpy.any(ops.numpy.logical_and(boxes, active), axis=1)
