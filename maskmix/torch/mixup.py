"""Mixup: blend each image with a partner image, mix labels likewise (Zhang et al., 2017)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from typing_extensions import Unpack

from maskmix.params import RANDOM_MIXUP, given_arguments

from ._base import CommonOptions, MaskMixTransform, all_selected, may_reuse_buffers, may_write_new_buffers
from ._mixing import MixingDraw, MixingTransform, beta, cyclic_shift, shifted_slices

__all__ = ["RandomMixup", "blend", "random_mixup"]


class RandomMixup(MixingTransform):
    """Blend each image with a partner image of the batch; mix the labels with the same weight.

    Paper: H. Zhang, M. Cisse, Y. N. Dauphin and D. Lopez-Paz, "mixup: Beyond Empirical Risk
    Minimization", ICLR 2018 (https://arxiv.org/abs/1710.09412).

    Per image: a partner is drawn uniformly among the other images of the batch and
    ``lam ~ Beta(alpha, alpha)``; the image becomes ``lam * x + (1 - lam) * x_partner`` (computed
    in float32 for uint8 images, then rounded, so uint8 stays uint8) and its label row
    ``lam * y + (1 - lam) * y_partner``.

    Reproducing the paper: ``RandomMixup.from_paper("cifar10")`` (``alpha=1``, the official
    ``mixup-cifar10`` script) and ``RandomMixup.from_paper("imagenet")`` (``alpha=0.2``, the
    paper's ImageNet ResNet runs; ``"imagenet_resnext"``: ``alpha=0.4``, its ResNeXt-101 runs)
    draw as the paper does: one ``lam ~ Beta(alpha, alpha)`` for the whole
    batch (``sampling="batch"``) and partners by a random permutation (``partner="permutation"``;
    an image that meets itself is left as it is).

    Args:
        alpha: ``Beta(alpha, alpha)`` parameter, > 0. Default 1.0.
        **common: the common options; see :class:`~maskmix.torch.MixingTransform` (with
            ``num_classes``, ``label_smoothing`` and ``partner``, the label options).

    Shapes:
        the blended images keep the batch's ``(B, C, H, W)`` shape; class indices ``(B,)`` or
        one-hot rows ``(B, K)`` become soft rows ``(B, K)`` (dtypes: see the base class).

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomMixup
        >>> blended, soft = RandomMixup(alpha=0.2, num_classes=4)(torch.rand(4, 3, 16, 16), torch.arange(4))
        >>> blended.shape, soft.sum(dim=1).allclose(torch.ones(4))
        (torch.Size([4, 3, 16, 16]), True)
    """

    spec = RANDOM_MIXUP
    dense_targets = "refuse"
    alpha: float

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        num_classes: int | None = None,
        label_smoothing: float = 0.0,
        partner: str = "other",
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def sample_mixing(self, draw: MixingDraw) -> dict[str, Any]:
        lam = beta(self.alpha, (draw.batch_size,), device=draw.device, generator=draw.generator)
        # 1 - lam is exact in float64 (not always in float32): float64 labels weigh exactly lam.
        return {"lam": lam, "partner_weight": torch.rsub(lam.to(torch.float64), 1.0)}

    def apply(self, images: Tensor, params: Mapping[str, Any]) -> Tensor:
        mixed = blend(images, params["partner"], params["lam"], shift=cyclic_shift(images, params))
        if all_selected(params):
            return mixed
        return torch.where(params["selected"].view(-1, 1, 1, 1), mixed, images)


def blend(images: Tensor, partner: Tensor, lam: Tensor, *, gathered: Tensor | None = None,
          shift: int | None = None) -> Tensor:
    """Every image blended with its partner: ``lam * x + (1 - lam) * x[partner]`` per image.

    ``lam`` is ``(B,)``; the result has the images' dtype (computed in float32 for uint8, then
    rounded) and no selection applied. ``gathered``, when given, is ``images[partner]`` already
    gathered by the caller, who still needs it: it is read, never written. ``shift``, when given,
    says that ``partner`` is ``(i + shift) mod B`` (:func:`~maskmix.torch._mixing.cyclic_shift`):
    floating images are then blended slice by slice, without a partner copy, to the same values.
    Mixup, and the Mixup images of RandomMixupOrCutMix.
    """
    if not (images.is_contiguous() or images.is_contiguous(memory_format=torch.channels_last)):
        # A strided or expanded view: torch's lerp takes its element-by-element loop there, which
        # writes other bfloat16 NaN payloads and float16 signs of zero than the vectorised loop of
        # a dense batch. Dense copies blend to the contiguous batch's bits.
        images = images.contiguous()
        gathered = None if gathered is None else gathered.contiguous()
    work = MaskMixTransform.compute_dtype(images.dtype)
    weight = lam.to(work).view(-1, 1, 1, 1)
    if shift is not None and work == images.dtype:
        out = torch.empty_like(images)
        for own, theirs in shifted_slices(images.shape[0], shift):
            torch.lerp(images[theirs], images[own], weight[own], out=out[own])
        return out
    # A lerp of two uint8 pixels with a weight in [0, 1] lies between them, whichever rounding
    # or formula computes it (every step is monotone and both ends are representable): the
    # uint8 result needs rounding but no saturation.
    # In eager mode without an autograd graph, fresh float copies are blended into in place: the
    # same lerp kernel over operands of one layout, the same values, a batch-sized buffer fewer.
    writable = may_write_new_buffers(images)
    if gathered is not None:
        partners = gathered.to(work)
        if writable and gathered.dtype != work:
            # A converted copy (uint8 images): the caller's `gathered` itself is never written.
            mixed = partners.lerp_(images.to(work), weight)
        else:
            mixed = torch.lerp(partners, images.to(work), weight)
        del partners
        return MaskMixTransform.to_image_dtype(mixed, images.dtype, in_place=True, within_range=True)
    if may_reuse_buffers(images):
        # The same values with fewer batch-sized allocations: gather the partners in the
        # image dtype, then blend and round in place.
        mixed = images.index_select(0, partner).to(work)
        return MaskMixTransform.to_image_dtype(mixed.lerp_(images.to(work), weight), images.dtype, in_place=True,
                                               within_range=True)
    # Indexing keeps the images' memory layout, so that lerp sees two tensors of one layout:
    # its result (last bit in bfloat16) does not depend on the layout then.
    x = images.to(work)
    # Indexing makes a new tensor: blended into in place when allowed, then rounded in place (a
    # lerp result is this call's own either way).
    mixed = x[partner].lerp_(x, weight) if writable else torch.lerp(x[partner], x, weight)
    del x
    return MaskMixTransform.to_image_dtype(mixed, images.dtype, in_place=True, within_range=True)


def random_mixup(
    images: Tensor,
    labels: Tensor,
    *,
    alpha: float = 1.0,
    num_classes: int | None = None,
    label_smoothing: float = 0.0,
    partner: str = "other",
    **common: Unpack[CommonOptions],
) -> tuple[Tensor, Tensor]:
    """Functional form of :class:`RandomMixup`: returns ``(mixed_images, soft_labels)``."""
    transform = RandomMixup(alpha=alpha, num_classes=num_classes, label_smoothing=label_smoothing, partner=partner,
                            **common)
    return transform(images, labels)
