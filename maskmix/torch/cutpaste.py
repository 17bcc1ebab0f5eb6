"""CutPaste: cut a patch and paste it elsewhere in the same image (Li et al., 2021)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from typing_extensions import Unpack

from maskmix.geometry import LUMA_WEIGHTS
from maskmix.params import RANDOM_CUTPASTE, given_arguments

from . import _patches, _sampling
from ._base import CommonOptions, MaskMixTransform, selection

__all__ = ["RandomCutPaste"]

#: ITU-R BT.601 luma weights, as torchvision's ``rgb_to_grayscale``.


def _index_to_position(index: Tensor, columns: Tensor) -> tuple[Tensor, Tensor]:
    return index // columns, index % columns


class RandomCutPaste(_sampling.RectanglePatches, MaskMixTransform):
    """Cut a rectangle out of each image and paste it at another place of the same image.

    Paper: C.-L. Li, K. Sohn, J. Yoon and T. Pfister, "CutPaste: Self-Supervised Learning for
    Anomaly Detection and Localization", CVPR 2021 (https://arxiv.org/abs/2104.04015). The paper's
    setting is ``patch_area=(0.02, 0.15), patch_aspect_ratio=(0.3, 3.3), color_jitter=0.1``;
    with ``return_labels=True`` the transform yields the "normal vs. cut-pasted" labels of its
    self-supervised pretext task.

    Per image:

    1. A rectangle size is drawn as in :class:`~maskmix.torch.RandomErasing`: area fraction
       ``a`` uniform in ``patch_area``, aspect ratio ``r = h / w`` log-uniform in
       ``patch_aspect_ratio``, ``h = round(sqrt(a H W r))`` by ``w = round(sqrt(a H W / r))``
       pixels (at least 1); the first of 10 candidates that fits is kept (else the first one,
       clamped to the image).
    2. A source position is drawn uniformly among the positions where the rectangle lies fully
       inside the image, and a destination position uniformly among the *other* such positions
       (the same position only when there is no other, e.g. a patch as large as the image).
       Source and destination may overlap.
    3. The destination rectangle receives the source rectangle's **original** pixels (as if the
       patch were cut from a copy of the image); everything else is unchanged.
    4. With ``color_jitter = j > 0``, the pasted patch (only) is jittered, as torchvision's
       ``ColorJitter(brightness=j, contrast=j, saturation=j)`` in a fixed order: factors ``b``,
       ``c``, ``s`` uniform in ``[1 - j, 1 + j]`` per image; brightness blends with black
       (``lo + (x - lo) b``), contrast blends with the patch's mean grey level
       (``m + (x - m) c``), saturation blends with each pixel's grey level
       (``g + (x - g) s``), each step clamped to the value range ``(lo, hi)``
       (``pixels_range``, by default ``(0, 1)`` or ``(0, 255)``). Grey levels use the ITU-R 601
       weights for 3 channels and the channel mean otherwise (so saturation does nothing to a
       single-channel image). Hue is not jittered. ``uint8`` results are rounded.

    Args:
        patch_area: patch area as a fraction of the image: a float in (0, 1) or a range
            ``(lo, hi)`` drawn uniformly. Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width: a number > 0 or a range ``(lo, hi)`` drawn
            log-uniformly. Default ``(0.3, 3.0)``.
        color_jitter: jitter strength ``j`` in ``[0, 1]`` of the pasted patch (see above).
            Default 0 (the pasted pixels are exact copies).
        return_labels: also return ``is_augmented``, CutPaste's "normal vs. cut-pasted" target:
            0 for an image passed through (see ``augmentation_ratio``) or whose patch fills it
            (one position only: nothing moves, e.g. ``1 x 1`` images). Default False.
        **common: common options; see :class:`~maskmix.torch.MaskMixTransform`.

    Shapes:
        ``(..., C, H, W)`` in, the same shape, dtype and device out, followed with
        ``return_labels=True`` by the int64 ``is_augmented`` of the leading dims ``shape[:-3]``
        (as :meth:`~maskmix.torch.MaskMixTransform.forward` returns it).

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomCutPaste
        >>> images = torch.rand(8, 3, 64, 64)
        >>> t = RandomCutPaste(color_jitter=0.1, return_labels=True, augmentation_ratio=0.5)
        >>> out, is_augmented = t(images)
        >>> out.shape, is_augmented.tolist().count(1)
        (torch.Size([8, 3, 64, 64]), 4)
    """

    spec = RANDOM_CUTPASTE
    dense_targets = "move"
    color_jitter: float

    def __init__(
        self,
        *,
        patch_area: float | tuple[float, float] = (0.05, 0.3),
        patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
        color_jitter: float = 0.0,
        return_labels: bool = False,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def refine_selection(self, params: dict[str, Any]) -> None:
        # A patch that fills its image has one position only: pasted onto itself it changes
        # nothing, so the image is not augmented (its pixels are unchanged either way, which
        # is why the move may still skip the selection when all images are selected; the
        # jitter may not, see apply).
        params["selected"] = params["selected"] & params["movable"]

    def sample(self, batch_size: int, channels: int, height: int, width: int, *,
               dtype: torch.dtype, device: torch.device,
               generator: torch.Generator | None) -> dict[str, Any]:
        h, w = self.draw_rectangles((batch_size,), height, width, device=device, generator=generator)
        columns = width - w + 1
        positions = (height - h + 1) * columns
        source = _sampling.randint(0, positions - 1, (batch_size,), device=device, generator=generator)
        # Uniform over the other positions: draw among positions - 1 and skip the source's index.
        other = _sampling.randint(0, positions - 2, (batch_size,), device=device, generator=generator)
        other = other + (other >= source).to(torch.int64)
        movable = positions > 1
        destination = torch.where(movable, other, source)
        src_top, src_left = _index_to_position(source, columns)
        dst_top, dst_left = _index_to_position(destination, columns)
        params: dict[str, Any] = {
            "height": h,
            "width": w,
            "src_top": src_top,
            "src_left": src_left,
            "top": dst_top,
            "left": dst_left,
            "movable": movable,
        }
        if self.color_jitter > 0:
            j = self.color_jitter
            for key in ("brightness", "contrast", "saturation"):
                params[key] = _sampling.uniform(1 - j, 1 + j, (batch_size,), device=device, generator=generator)
        return params

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        mask, out = self._paste(images, params)
        if self.color_jitter > 0:
            # A patch that fills its image is not augmented (see make_params): no jitter either,
            # even when the whole batch is selected by construction and `mask` skips the selection.
            mask = _sampling.mask_and(mask, params["movable"].view(-1, 1, 1))
            out = torch.where(mask.unsqueeze(1), self._jitter(out, mask, params), out)
        return out

    def apply_mask(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        # The same move as the pixels, without the colour jitter: labels move, never blend.
        return self._paste(masks, params)[1]

    def _paste(self, images: Tensor, params: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        """The ``(B, H, W)`` destination boxes and ``images`` with each source patch copied there."""
        _, _, height, width = images.shape
        mask = _sampling.box_mask_of(params, height, width, within=selection(params))
        # Each destination pixel reads the source pixel at the same offset inside the patch; one
        # gather from the untouched input, so overlapping source and destination are no problem.
        shift = (params["src_top"] - params["top"]) * width + (params["src_left"] - params["left"])
        return mask, _patches.move_pixels(images, torch.where(mask, shift.view(-1, 1, 1), 0))

    def _jitter(self, patch: Tensor, box: Tensor, params: Mapping[str, Any]) -> Tensor:
        """Brightness, contrast and saturation jitter of the pixels of ``patch`` inside ``box``."""
        dtype = patch.dtype
        work = torch.float64 if dtype == torch.float64 else torch.float32
        lo, hi = self.value_range(dtype)
        x = patch.to(work)

        def factor(key: str) -> Tensor:
            return params[key].to(work).view(-1, 1, 1, 1)

        def grey(values: Tensor) -> Tensor:
            if values.shape[1] == 3:
                r, g, b = values.unbind(dim=1)
                return (LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b).unsqueeze(1)
            return values.mean(dim=1, keepdim=True)

        x = (lo + (x - lo) * factor("brightness")).clamp(lo, hi)
        area = (params["height"] * params["width"]).to(work).view(-1, 1, 1, 1)
        # where, not a product with the mask: values outside the patch (even NaN) never leak in.
        mean = torch.where(box.unsqueeze(1), grey(x), 0.0).sum(dim=(-2, -1), keepdim=True) / area
        x = (mean + (x - mean) * factor("contrast")).clamp(lo, hi)
        gray = grey(x)
        x = (gray + (x - gray) * factor("saturation")).clamp(lo, hi)
        return self.to_image_dtype(x, dtype)
