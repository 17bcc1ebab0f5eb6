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

    Per image: draw an area fraction ``a`` uniformly in ``patch_area``; the square's side is
    ``round(sqrt(a * H * W))`` pixels (at least 1). With ``allow_partial=False`` (default) the side
    is capped at ``min(H, W)`` and the square is placed uniformly so that it lies fully inside the
    image. With ``allow_partial=True`` (the paper) its centre is uniform over the image's pixels
    and the square is clipped at the border, so border squares erase fewer pixels (the paper's
    16 px square on 32 px CIFAR images is ``patch_area=0.25``).

    Args:
        patch_area: square area as a fraction of the image area: a float in (0, 1) or a range
            ``(lo, hi)`` drawn uniformly per image. Default 0.1.
        allow_partial: let the square cross the border (see above). Default False.
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

    def __init__(
        self,
        *,
        patch_area: float | tuple[float, float] = 0.1,
        allow_partial: bool = False,
        fill_method: str | float | tuple[float, ...] = "black",
        mask_fill: int | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def sample_region(self, batch_size: Any, height: int, width: int, seed: Any) -> dict[str, Any]:
        ops = self.ops
        area = _sampling.uniform(ops, *self.patch_area, (batch_size,), seed)
        side = ops.cast(ops.numpy.round(ops.numpy.sqrt(area * ops.cast(height * width, "float32"))), "int32")
        side = ops.numpy.maximum(side, 1)
        if not self.allow_partial:
            side = ops.numpy.minimum(side, ops.numpy.minimum(height, width))
            top, left = _sampling.place_inside(ops, side, side, height, width, seed)
            return {"top": top, "left": left, "height": side, "width": side}
        center_y = _sampling.randint(ops, 0, height - 1, (batch_size,), seed)
        center_x = _sampling.randint(ops, 0, width - 1, (batch_size,), seed)
        # The square [c - side//2, c - side//2 + side), clipped to the image.
        half = ops.numpy.floor_divide(side, 2)
        y0, x0 = center_y - half, center_x - half
        top, left = ops.numpy.clip(y0, 0, height), ops.numpy.clip(x0, 0, width)
        bottom, right = ops.numpy.clip(y0 + side, 0, height), ops.numpy.clip(x0 + side, 0, width)
        return {"top": top, "left": left, "height": bottom - top, "width": right - left}

    def region_mask(self, params: Mapping[str, Any], height: int, width: int) -> Any:
        return _sampling.box_mask_of(self.ops, params, height, width)
