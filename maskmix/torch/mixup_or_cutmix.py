"""Mixup or CutMix, chosen per image: timm's ``Mixup`` (Wightman, pytorch-image-models)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from typing_extensions import Self, Unpack

from maskmix.params import RANDOM_MIXUP_OR_CUTMIX, given_arguments, timm_mixup_config, with_own_options

from . import _sampling
from ._base import CommonOptions, may_reuse_buffers, may_write_new_buffers, selection
from ._mixing import MixingDraw, MixingTransform, beta, box_params, paste_box
from .cutmix import lambda_box
from .mixup import blend

__all__ = ["RandomMixupOrCutMix", "minmax_box", "random_mixup_or_cutmix"]


def minmax_box(minmax: tuple[float, float], size: tuple[int, ...], height: int, width: int, *,
               device: torch.device, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Int64 ``(top, left, h, w)`` of timm's ``rand_bbox_minmax`` boxes, one per entry of ``size``.

    For ``minmax = (lo, hi)`` the height is uniform over the integers ``int(lo H) .. int(hi H) - 1``
    (NumPy's ``randint`` excludes its upper end; where that range is empty, ``int(lo H)``), the
    width likewise with ``W``, each drawn on its own; the corner is uniform where the box fits.
    """
    lo, hi = minmax
    h_range = (int(height * lo), max(int(height * lo), int(height * hi) - 1))
    w_range = (int(width * lo), max(int(width * lo), int(width * hi) - 1))
    h = _sampling.randint(*h_range, size, device=device, generator=generator)
    w = _sampling.randint(*w_range, size, device=device, generator=generator)
    top, left = _sampling.place_inside(h, w, height, width, device=device, generator=generator)
    return top, left, h, w


class RandomMixupOrCutMix(MixingTransform):
    """Mix each image with a partner image by Mixup or by CutMix, chosen per image; mix the labels.

    timm's ``timm.data.Mixup`` (the Mixup/CutMix of DeiT, ConvNeXt and Swin training scripts),
    vectorised: every image draws its own choice, lambda and box in one pass over the batch.
    Papers: H. Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018; S. Yun et al.,
    "CutMix", ICCV 2019. ``torchvision``'s ``RandomChoice([CutMix(), MixUp()])`` chooses once per
    batch; this chooses per image (or per batch or pair with ``sampling``, see :meth:`from_timm`).

    Per image: a partner is drawn among the other images of the batch; with probability
    ``switch_prob`` the image is CutMix-ed, else Mixup-ed (``mixup_alpha=0``: always CutMix;
    ``cutmix_alpha=0``: always Mixup).

    * Mixup: ``lam ~ Beta(mixup_alpha, mixup_alpha)``, the image becomes
      ``lam * x + (1 - lam) * x_partner`` (float32 then rounded for uint8) and the partner's label
      weight is ``1 - lam``, as :class:`~maskmix.torch.RandomMixup`.
    * CutMix: ``lam ~ Beta(cutmix_alpha, cutmix_alpha)`` and a box of the image's shape and area
      ``1 - lam``, centre uniform, clipped (``box_rounding``: ``"round"`` and ``"truncate"`` as
      :class:`~maskmix.torch.RandomCutMix`, ``"timm"`` as timm's ``rand_bbox``); or, with
      ``cutmix_minmax=(lo, hi)``, timm's ``rand_bbox_minmax`` box: height uniform over
      ``int(lo H) .. int(hi H) - 1`` pixels, width likewise, fully inside, ``lam`` unused. The
      partner's pixels are pasted in the box; the partner's label weight is the box's exact pixel
      count over ``H * W`` (timm's ``correct_lam=True``).

    The label row becomes ``(1 - f) y + f y_partner`` with that weight ``f``. Segmentation masks
    are refused (a blended pixel has no single class), as by :class:`~maskmix.torch.RandomMixup`.

    Args:
        mixup_alpha: ``Beta(alpha, alpha)`` parameter of the Mixup ``lam``, >= 0; 0 disables Mixup.
        cutmix_alpha: the same for CutMix, >= 0; 0 disables CutMix (not both 0).
        switch_prob: probability in ``[0, 1]`` of CutMix rather than Mixup when both are enabled.
        cutmix_minmax: None, or ``(lo, hi)`` with ``0 <= lo < hi <= 1``: timm's min/max box.
        box_rounding: ``"round"`` (default), ``"truncate"`` or ``"timm"``: the box of area
            ``1 - lam`` (unused with ``cutmix_minmax``).
        **common: the common options; see :class:`~maskmix.torch.MixingTransform` (with
            ``num_classes`` and ``label_smoothing``, the label options).

    Shapes:
        a batch ``(B, C, H, W)`` (or ``(..., B, C, H, W)``) and its labels (class indices ``(B,)``
        with ``num_classes``, or rows ``(B, K)``); the images keep their shape and dtype and the
        labels come back as soft rows ``(B, K)``.

    Example:
        timm's ``Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=10)``:

        >>> import torch
        >>> from maskmix.torch import RandomMixupOrCutMix
        >>> mix = RandomMixupOrCutMix.from_timm(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1,
        ...                                     num_classes=10)
        >>> images, labels = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
        >>> images, soft = mix(images, labels)
        >>> soft.shape, bool(torch.allclose(soft.sum(dim=1), torch.ones(8)))
        (torch.Size([8, 10]), True)

        The same choice per image, with maskmix's own defaults (both alphas 1, ``switch_prob=0.5``):

        >>> images, soft = RandomMixupOrCutMix(num_classes=10)(torch.rand(8, 3, 32, 32), labels)
    """

    spec = RANDOM_MIXUP_OR_CUTMIX
    dense_targets = "refuse"
    mixup_alpha: float
    cutmix_alpha: float
    switch_prob: float
    cutmix_minmax: tuple[float, float] | None
    box_rounding: str

    def __init__(
        self,
        *,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 1.0,
        switch_prob: float = 0.5,
        cutmix_minmax: tuple[float, float] | None = None,
        box_rounding: str = "round",
        num_classes: int | None = None,
        label_smoothing: float = 0.0,
        partner: str = "other",
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    @classmethod
    def from_timm(
        cls,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 0.0,
        cutmix_minmax: tuple[float, float] | None = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
        correct_lam: bool = True,
        label_smoothing: float = 0.1,
        num_classes: int = 1000,
        multi_label: bool = False,
        *,
        mixup_off_epoch: int | None = None,
        **options: Any,
    ) -> Self:
        """The transform that ``timm.data.Mixup(...)`` with the same arguments is, and defaults.

        ``prob`` becomes ``augmentation_ratio=prob, bernoulli_mix=True`` (the probability that a
        unit is mixed); ``mode`` becomes ``sampling``: ``"batch"`` (one coin, choice, lambda and
        box for the whole batch), ``"pair"`` (images ``i`` and ``B - 1 - i`` share them and are
        mixed with each other) or ``"image"`` (timm's ``"elem"``), always with ``partner="flip"``
        (image ``i`` is mixed with ``B - 1 - i``; the middle image of an odd batch, which timm
        refuses, passes through); the box of area ``1 - lam`` is timm's (``box_rounding="timm"``)
        and ``cutmix_minmax`` forces ``cutmix_alpha=1`` as in timm. ``label_smoothing`` is timm's
        (``y (1 - s) + s / K`` before mixing). ``options`` are maskmix's own (``generator``,
        ``pixels_range``...); ``sampling``, ``augmentation_ratio`` and ``bernoulli_mix``, which
        timm's ``mode`` and ``prob`` set, raise a ``ValueError`` (the timm argument would be dropped).

        Refused with a ``ValueError`` rather than ignored: ``correct_lam=False`` where it would
        change a label (maskmix weighs labels by the exact pasted area, timm's default
        ``correct_lam=True``), ``multi_label=True`` with ``label_smoothing > 0`` (timm smooths
        multi-label rows towards 0.5), and ``mixup_off_epoch`` other than None or 0 (a schedule:
        give the training integration one that sets ``augmentation_ratio`` to 0 from that epoch).

        Example:
            >>> from maskmix.torch import RandomMixupOrCutMix
            >>> mix = RandomMixupOrCutMix.from_timm(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=10)
            >>> mix.sampling, mix.partner, mix.augmentation_ratio, mix.label_smoothing
            ('image', 'flip', 1.0, 0.1)
        """
        config = timm_mixup_config(
            f"{cls.__name__}.from_timm", mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha,
            cutmix_minmax=cutmix_minmax, prob=prob, switch_prob=switch_prob, mode=mode, correct_lam=correct_lam,
            label_smoothing=label_smoothing, num_classes=num_classes, multi_label=multi_label,
            mixup_off_epoch=mixup_off_epoch,
        )
        return cls(**with_own_options(f"{cls.__name__}.from_timm", config, options))

    def sample_mixing(self, draw: MixingDraw) -> dict[str, Any]:
        size, height, width = (draw.batch_size,), draw.height, draw.width
        device, generator = draw.device, draw.generator
        mixup_on, cutmix_on = self.mixup_alpha > 0, self.cutmix_alpha > 0
        if mixup_on and cutmix_on:
            use_cutmix = _sampling.uniform(0.0, 1.0, size, device=device, generator=generator) < self.switch_prob
        else:
            use_cutmix = torch.full(size, cutmix_on, dtype=torch.bool, device=device)
        lam_cut: Tensor | None = None
        if not cutmix_on:
            starts = ends = torch.zeros((*size, 2), dtype=torch.int64, device=device)
        elif self.cutmix_minmax is None:
            lam_cut = beta(self.cutmix_alpha, size, device=device, generator=generator)
            starts, ends = lambda_box(lam_cut, height, width, self.box_rounding, device=device, generator=generator)
        else:
            top, left, h, w = minmax_box(self.cutmix_minmax, size, height, width, device=device, generator=generator)
            starts = torch.stack((top, left), 1)
            ends = starts + torch.stack((h, w), 1)
        if mixup_on and cutmix_on:
            # The Mixup images paste no box: their box is empty.
            ends = torch.where(use_cutmix.unsqueeze(1), ends, starts)
        params = box_params(starts, ends, height, width)
        if lam_cut is None:
            lam_cut = (1.0 - params["partner_weight"]).to(torch.float32)  # the min/max box's own lambda
        if mixup_on:
            lam_mix = beta(self.mixup_alpha, size, device=device, generator=generator)
            # 1 - lam is exact in float64 (not always in float32): float64 labels weigh exactly lam.
            mixup_weight = torch.rsub(lam_mix.to(torch.float64), 1.0)
            params["partner_weight"] = torch.where(use_cutmix, params["partner_weight"], mixup_weight)
            lam = torch.where(use_cutmix, lam_cut, lam_mix) if cutmix_on else lam_mix
        else:
            lam = lam_cut
        params["lam"], params["use_cutmix"] = lam, use_cutmix
        return params

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        selected = selection(params)
        reuse = may_reuse_buffers(images)
        # A dense channels_last batch, eager, no autograd graph: new buffers of this call's that
        # have its very strides may be written over as well (the layout a new tensor would have).
        writable = (not reuse and images.is_contiguous(memory_format=torch.channels_last)
                    and may_write_new_buffers(images))
        # One gather of the partners serves the blend and the boxes (indexing keeps the layout).
        partner_images = images.index_select(0, params["partner"]) if reuse else images[params["partner"]]
        out = images
        if self.mixup_alpha > 0:
            mixed = blend(images, params["partner"], params["lam"], gathered=partner_images)
            blending = ~params["use_cutmix"]
            if selected is not None:
                blending = blending & selected
            # `mixed` is a fresh buffer: where writes over it in eager mode (one allocation fewer).
            # So also for a channels_last batch when `mixed` has the images' strides.
            into_mixed = reuse or (writable and mixed.stride() == images.stride())
            out = torch.where(blending.view(-1, 1, 1, 1), mixed, images, **({"out": mixed} if into_mixed else {}))
        if self.cutmix_alpha > 0:
            # The Mixup images' boxes are empty: one paste puts the CutMix images' boxes in.
            # The partner copy is a fresh buffer when `reuse` (the blend has read it): the output.
            # Likewise for a channels_last batch when the copy (indexing made it) has its strides.
            fresh = reuse or (writable and partner_images.stride() == images.stride() == out.stride())
            out = paste_box(partner_images, out, params, within=selected, fresh_source=fresh)
        return out


def random_mixup_or_cutmix(
    images: Tensor,
    labels: Tensor,
    *,
    mixup_alpha: float = 1.0,
    cutmix_alpha: float = 1.0,
    switch_prob: float = 0.5,
    cutmix_minmax: tuple[float, float] | None = None,
    box_rounding: str = "round",
    num_classes: int | None = None,
    label_smoothing: float = 0.0,
    partner: str = "other",
    **common: Unpack[CommonOptions],
) -> tuple[Tensor, Tensor]:
    """Functional form of :class:`RandomMixupOrCutMix`: returns ``(mixed_images, soft_labels)``.

    Example:
        >>> import torch
        >>> from maskmix.torch import random_mixup_or_cutmix
        >>> x, y = random_mixup_or_cutmix(torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]), num_classes=4)
        >>> y.shape
        torch.Size([4, 4])
    """
    transform = RandomMixupOrCutMix(
        mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, switch_prob=switch_prob, cutmix_minmax=cutmix_minmax,
        box_rounding=box_rounding, num_classes=num_classes, label_smoothing=label_smoothing, partner=partner,
        **common,
    )
    return transform(images, labels)
