"""Cutout: erase one square per image (DeVries & Taylor, 2017)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from typing_extensions import Unpack

from maskmix.params import RANDOM_CUTOUT, given_arguments

from . import _sampling
from ._base import CommonOptions, MaskingTransform

__all__ = ["RandomCutout"]


class RandomCutout(MaskingTransform):
    """Erase one square of a given area per image.

    Paper: T. DeVries and G. W. Taylor, "Improved Regularization of Convolutional Neural Networks
    with Cutout", 2017 (https://arxiv.org/abs/1708.04552).

    Shapes:
        ``(..., C, H, W)`` in, same shape, dtype and device out.

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
        **common: common options; see :class:`~maskmix.torch.MaskingTransform`, which lists the fills.

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomCutout
        >>> images = torch.rand(8, 3, 32, 32)
        >>> out = RandomCutout(patch_area=0.25, allow_partial=True)(images)
        >>> out.shape
        torch.Size([8, 3, 32, 32])
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

    def sample_region(self, batch_size: int, height: int, width: int, *, device: torch.device,
                      generator: torch.Generator | None) -> dict[str, Tensor]:
        pixels = float(height * width)
        lo, hi = self.patch_area
        # The area is drawn in pixels directly, and the side clamped once: fewer kernels per call.
        area = _sampling.uniform(lo * pixels, hi * pixels, (batch_size,), device=device, generator=generator)
        largest = None if self.allow_partial else min(height, width)
        side = torch.sqrt(area).round_().clamp_(1, largest).to(torch.int64)
        if not self.allow_partial:
            top, left = _sampling.place_inside(side, side, height, width, device=device, generator=generator)
            return {"top": top, "left": left, "height": side, "width": side}
        center_y = _sampling.randint(0, height - 1, (batch_size,), device=device, generator=generator)
        center_x = _sampling.randint(0, width - 1, (batch_size,), device=device, generator=generator)
        # The square [c - side//2, c - side//2 + side), clipped to the image.
        y0, x0 = center_y - side // 2, center_x - side // 2
        top, left = y0.clamp(0, height), x0.clamp(0, width)
        bottom, right = (y0 + side).clamp(0, height), (x0 + side).clamp(0, width)
        return {"top": top, "left": left, "height": bottom - top, "width": right - left}

    def region_mask(self, params: Mapping[str, Any], height: int, width: int) -> Tensor:
        return _sampling.box_mask_of(params, height, width)


