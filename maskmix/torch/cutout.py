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
    # The usual draw is one randint and one add: inference mode would cost more than it saves.
    draws_in_inference_mode = False
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

    def sample_region(self, batch_size: int, height: int, width: int, *, device: torch.device,
                      generator: torch.Generator | None) -> dict[str, Tensor]:
        lo_count, max_count = self.patch_count
        # One square per image keeps the (B,) draws of the single-square transform.
        shape: tuple[int, ...] = (batch_size,) if max_count == 1 else (batch_size, max_count)
        largest = None if self.allow_partial else min(height, width)
        side: int | Tensor
        if self.patch_side is not None:
            lo, hi = self.patch_side
            if lo == hi:
                side = lo if largest is None else min(lo, largest)  # a fixed side: nothing to draw
            else:
                side = _sampling.randint(lo, hi, shape, device=device, generator=generator)
                if largest is not None:
                    side = side.clamp_max(largest)
        else:
            pixels = float(height * width)
            low, high = self.patch_area
            if low == high:
                side = _area_side(low * pixels, largest)
            else:
                # The area is drawn in pixels directly, and the side clamped once: fewer kernels per call.
                area = _sampling.uniform(low * pixels, high * pixels, shape, device=device, generator=generator)
                side = torch.sqrt(area).round_().clamp_(1, largest).to(torch.int64)
        # The official rule [c - L//2, c + L//2) spans 2 * (L//2) pixels: one less for an odd side.
        half = side // 2
        extent = 2 * half if self.symmetric_box else side
        if not self.allow_partial:
            # Rows and columns in the last dim (box_keep's layout): the square lies fully inside.
            rooms = (height - extent, width - extent) if height != width else (height - extent,) * 2
            starts = _sampling.uniform_corners(*rooms, shape, device=device, generator=generator)
            ends = starts + (extent.unsqueeze(-1) if isinstance(extent, Tensor) else extent)
            size = extent if isinstance(extent, Tensor) else _sampling.cached_full(shape, extent, torch.int64, device)
            top, left = starts.unbind(-1)  # one call for both views
            params = {"top": top, "left": left, "height": size, "width": size}
        else:
            centres = _sampling.random_points(shape, height, width, device=device, generator=generator)
            # The square [c - side//2, c - side//2 + extent), clipped to the image.
            starts = centres - half
            ends = _sampling.clip_to_image(starts + extent, height, width)
            starts = _sampling.clip_to_image(starts, height, width)
            sizes = ends - starts
            params = {"top": starts[0], "left": starts[1], "height": sizes[0], "width": sizes[1]}
            starts, ends = starts.movedim(0, -1), ends.movedim(0, -1)  # views in box_keep's layout
        params["box_start"], params["box_end"] = starts, ends
        if max_count > 1:
            count = _sampling.randint(lo_count, max_count, (batch_size,), device=device, generator=generator)
            params["active"] = _sampling.cached_arange(max_count, device) < count.unsqueeze(1)
        return params

    def region_keep(self, params: Mapping[str, Any], height: int, width: int, dtype: torch.dtype, *,
                    within: Tensor | None = None) -> Tensor:
        if "active" in params:
            within = params["active"] if within is None else _sampling.mask_and(params["active"], within.view(-1, 1))
        keep = _sampling.box_keep(params["box_start"], params["box_end"], height, width, dtype, within=within)
        return keep if "active" not in params else keep.amin(dim=1)  # kept where no square covers it


@_sampling.host_cached(maxsize=64)
def _area_side(area_pixels: float, largest: int | None) -> int:
    """The side of a square of ``area_pixels`` pixels as the drawn sides are computed (a float32
    area, its square root rounded half to even, at least 1, at most ``largest``): a fixed area
    gives a fixed side, worked out once on the host."""
    side = torch.tensor(area_pixels, dtype=torch.float32).sqrt().round().clamp(1, largest)
    return int(side.item())  # a CPU tensor: no device sync
