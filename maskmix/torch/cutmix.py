"""CutMix: paste a box of a partner image, mix labels by pixel fraction (Yun et al., 2019)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from typing_extensions import Unpack

from maskmix.geometry import image_aspect
from maskmix.params import RANDOM_CUTMIX, given_arguments

from . import _sampling
from ._base import CommonOptions, may_reuse_buffers, selection
from ._mixing import (
    MixingDraw,
    MixingTransform,
    beta,
    box_fraction,
    box_params,
    cyclic_shift,
    paste_box,
    paste_box_shifted,
)

__all__ = ["RandomCutMix", "clip_box", "lambda_box", "partner_box", "random_cutmix"]


def partner_box(top: Tensor, left: Tensor, h: Tensor, w: Tensor, height: int, width: int) -> dict[str, Tensor]:
    """Parameters of per-image ``h x w`` boxes that receive a partner's pixels (CutMix, the mixed
    Cut-Thumbnail), with their label weight: the exact fraction of the image they cover."""
    return {"top": top, "left": left, "height": h, "width": w, "partner_weight": box_fraction(h, w, height, width)}


def lambda_box(lam: Tensor, height: int, width: int, rounding: str, *, device: torch.device,
               generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Int64 ``(B, 2)`` starts and ends (rows ``[:, 0]``, columns ``[:, 1]``) of per-image boxes of the
    image's shape and area ``1 - lam``, centred uniformly over the pixels and clipped (the CutMix
    paper's box); :func:`~maskmix.torch._mixing.box_params` makes them parameters.

    The sides are ``H sqrt(1 - lam)`` by ``W sqrt(1 - lam)``, rounded (``rounding="round"``) or
    truncated (``"truncate"``, ``"timm"``); the rows are ``[cy - cut // 2, cy - cut // 2 + cut)``,
    except with ``"truncate"``, the official CutMix code's ``[cy - cut // 2, cy + cut // 2)``
    (an odd side loses a pixel); ``"timm"`` is timm's ``rand_bbox``. Columns likewise.
    """
    # In place on fresh temporaries: the same values, fewer allocations (host time).
    side = torch.rsub(lam, 1.0).sqrt_()
    # A square image needs one product for both sides, broadcast over rows and columns.
    scaled = (side * height).unsqueeze(1) if height == width else torch.stack((side * height, side * width), 1)
    # Truncation is trunc(), as the official int(): the products are non-negative.
    cuts = (scaled.trunc_() if rounding in ("truncate", "timm") else scaled.round_()).to(torch.int64)
    centres = _sampling.random_points(tuple(lam.shape), height, width, device=device, generator=generator).t()
    half = torch.floor_divide(cuts, 2)
    starts = centres - half
    # The official box ends at c + cut // 2: an odd cut loses a pixel.
    ends = centres + half if rounding == "truncate" else starts + cuts
    return clip_box(starts, height, width), clip_box(ends, height, width)


def clip_box(positions: Tensor, height: int, width: int) -> Tensor:
    """The fresh int64 ``(B, 2)`` row/column ``positions`` clamped to ``[0, H]`` and ``[0, W]`` in place."""
    if height == width:
        return positions.clamp_(0, height)
    positions[:, 0].clamp_(0, height)
    positions[:, 1].clamp_(0, width)
    return positions


class RandomCutMix(MixingTransform):
    """Replace a box of each image by the same box of a partner image; mix the labels likewise.

    Paper: S. Yun, D. Han, S. J. Oh, S. Chun, J. Choe and Y. Yoo, "CutMix: Regularization Strategy
    to Train Strong Classifiers with Localizable Features", ICCV 2019 (https://arxiv.org/abs/1905.04899).

    Per image: a partner is drawn uniformly among the other images of the batch and
    ``lam ~ Beta(alpha, alpha)``.

    * Default: the box has the image's shape and area ``1 - lam``: its sides are
      ``cut_h = round(H sqrt(1 - lam))`` by ``cut_w = round(W sqrt(1 - lam))``; its centre
      ``(cy, cx)`` is uniform over the image's pixels, its rows are
      ``[cy - cut_h // 2, cy - cut_h // 2 + cut_h)`` (columns likewise) and it is clipped at the
      border. This is the paper's law with another rounding, not the official code's box: on
      32 x 32 images the mean pasted fraction is 0.321 here and 0.299 with the official rounding,
      which shrinks the box (a distinguishable law: see ``tests/papers``).
    * ``box_rounding="truncate"``: the official code's rounding (``rand_bbox`` in
      clovaai/CutMix-PyTorch): ``cut_h = int(H sqrt(1 - lam))`` (truncated), rows
      ``[cy - cut_h // 2, cy + cut_h // 2)`` (an odd side loses a pixel), clipped; columns likewise.
    * With ``patch_area`` and/or ``patch_aspect_ratio`` (the original library's variant): the area
      fraction is ``lo + (hi - lo) * lam`` over the ``patch_area`` range (``(0, 1)`` if None), the
      aspect ratio ``h / w`` is log-uniform over ``patch_aspect_ratio`` (the image's own ``H / W``
      if None), and the box lies fully inside the image.

    The pixels of the box are copied from the partner; the label row becomes
    ``(1 - f) y_self + f y_partner`` where ``f`` is the box's exact pixel count divided by
    ``H * W`` (after clipping).

    Args:
        alpha: ``Beta(alpha, alpha)`` parameter, > 0. Default 1.0 (lam uniform).
        patch_area: None, or the area range of the original library's variant (float or pair).
        patch_aspect_ratio: None, or the aspect range of that variant (number or pair).
        box_rounding: ``"round"`` (default) or ``"truncate"`` (the official code's box); only for
            the box of area ``1 - lam`` (``patch_area`` and ``patch_aspect_ratio`` None): the
            variant's box does not use it.
        **common: the common options; see :class:`~maskmix.torch.MixingTransform`, which also
            documents ``num_classes``, ``label_smoothing`` and ``partner`` (each image's partner:
            ``"other"``, ``"permutation"`` or ``"flip"``).

    Reproducing the paper: ``RandomCutMix.from_paper("cifar")`` (``"imagenet"``) sets
    ``alpha=1``, ``box_rounding="truncate"`` and the official ``cutmix_prob`` (0.5 on CIFAR, 1 on
    ImageNet) as the probability that a batch is mixed, as the official ``train.py``: one ``lam``
    and one box for the whole batch (``sampling="batch"``), one coin per batch
    (``bernoulli_mix=True``) and partners by ``torch.randperm`` (``partner="permutation"``; an
    image that meets itself is left as it is).

    Shapes:
        a batch ``(B, C, H, W)`` (or ``(..., B, C, H, W)``) and its labels; each image comes back
        with one box from its partner, and the labels as ``(B, K)`` rows weighted by box area.

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomCutMix
        >>> images, labels = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
        >>> out, soft = RandomCutMix(num_classes=10)(images, labels)
        >>> soft.shape
        torch.Size([8, 10])
    """

    spec = RANDOM_CUTMIX
    dense_targets = "move"
    alpha: float
    patch_area: tuple[float, float] | None
    patch_aspect_ratio: tuple[float, float] | None
    box_rounding: str

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        patch_area: float | tuple[float, float] | None = None,
        patch_aspect_ratio: float | tuple[float, float] | None = None,
        box_rounding: str = "round",
        num_classes: int | None = None,
        label_smoothing: float = 0.0,
        partner: str = "other",
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def sample_mixing(self, draw: MixingDraw) -> dict[str, Any]:
        size, height, width = (draw.batch_size,), draw.height, draw.width
        device, generator = draw.device, draw.generator
        lam = beta(self.alpha, size, device=device, generator=generator)
        if self.patch_area is None and self.patch_aspect_ratio is None:
            starts, ends = lambda_box(lam, height, width, self.box_rounding, device=device, generator=generator)
            return {"lam": lam, **box_params(starts, ends, height, width)}
        lo, hi = self.patch_area if self.patch_area is not None else (0.0, 1.0)
        area = lo + (hi - lo) * lam
        if self.patch_aspect_ratio is not None:
            aspect = _sampling.log_uniform(*self.patch_aspect_ratio, size, device=device, generator=generator)
        else:
            aspect = torch.full(size, image_aspect(height, width), dtype=torch.float32, device=device)
        # Heights [0] and widths [1], fitted to the image, then a corner where the box fits.
        sides = clip_box(_sampling.rectangle_sides(area, aspect, height, width).t(), height, width)
        room = (height - sides) if height == width else torch.stack((height - sides[:, 0], width - sides[:, 1]), 1)
        corners = _sampling.randint(0, room, room.shape, device=device, generator=generator)
        return {"lam": lam, **box_params(corners, corners + sides, height, width)}

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        within = selection(params)
        shift = cyclic_shift(images, params)
        if shift is not None:
            return paste_box_shifted(images, params, shift, within=within)
        if may_reuse_buffers(images):
            # The partner copy is a fresh buffer: it becomes the output.
            return paste_box(images.index_select(0, params["partner"]), images, params, within=within,
                             fresh_source=True)
        # Indexing keeps the images' memory layout (index_select would not).
        return paste_box(images[params["partner"]], images, params, within=within, fresh_source=False)

    def apply_mask(self, masks: Tensor, params: Mapping[str, Any]) -> Tensor:
        # The same box and partner as the pixels: the partner's mask region is pasted.
        return self.apply(masks, params)


def random_cutmix(
    images: Tensor,
    labels: Tensor,
    *,
    alpha: float = 1.0,
    patch_area: float | tuple[float, float] | None = None,
    patch_aspect_ratio: float | tuple[float, float] | None = None,
    box_rounding: str = "round",
    num_classes: int | None = None,
    label_smoothing: float = 0.0,
    partner: str = "other",
    **common: Unpack[CommonOptions],
) -> tuple[Tensor, Tensor]:
    """Functional form of :class:`RandomCutMix`: returns ``(mixed_images, soft_labels)``.

    Example:
        >>> import torch
        >>> from maskmix.torch import random_cutmix
        >>> x, y = random_cutmix(torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]), num_classes=4)
        >>> y.sum(dim=1)
        tensor([1., 1., 1., 1.])
    """
    transform = RandomCutMix(
        alpha=alpha,
        patch_area=patch_area,
        patch_aspect_ratio=patch_aspect_ratio,
        box_rounding=box_rounding,
        num_classes=num_classes,
        label_smoothing=label_smoothing,
        partner=partner,
        **common,
    )
    return transform(images, labels)
