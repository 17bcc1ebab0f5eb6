"""Mixup or CutMix, chosen per image: timm's ``Mixup`` (Wightman, pytorch-image-models)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.params import RANDOM_MIXUP_OR_CUTMIX, given_arguments, timm_mixup_config, with_own_options

from . import _sampling
from ._base import CommonOptions
from ._mixing import MixingDraw, MixingLayer
from .cutmix import lambda_box, partner_box
from .mixup import blend

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

__all__ = ["RandomMixupOrCutMix", "minmax_box", "random_mixup_or_cutmix"]


def _side_bounds(ops: Any, side: Any, minmax: tuple[float, float]) -> tuple[Any, Any]:
    """``int(lo * side)`` and ``max(int(lo * side), int(hi * side) - 1)``: computed on the host for a
    static side, in float64 (the host's arithmetic) for a side known only at run time."""
    lo, hi = minmax
    if isinstance(side, int):
        return int(side * lo), max(int(side * lo), int(side * hi) - 1)
    scaled = ops.cast(side, "float64")
    low = ops.cast(ops.numpy.floor(scaled * lo), "int32")
    return low, ops.numpy.maximum(low, ops.cast(ops.numpy.floor(scaled * hi), "int32") - 1)


def minmax_box(ops: Any, minmax: tuple[float, float], size: Any, height: Any, width: Any,
               seed: Any) -> tuple[Any, Any, Any, Any]:
    """Int32 ``(top, left, h, w)`` of timm's ``rand_bbox_minmax`` boxes: the rules of
    :func:`maskmix.torch.mixup_or_cutmix.minmax_box` (sides uniform over ``int(lo H) ..
    int(hi H) - 1``, corner uniform where the box fits)."""
    h, w = _sampling.randints(ops, [_side_bounds(ops, height, minmax), _side_bounds(ops, width, minmax)], size, seed)
    top, left = _sampling.place_inside(ops, h, w, height, width, seed)
    return top, left, h, w


@keras.saving.register_keras_serializable(package="maskmix")
class RandomMixupOrCutMix(MixingLayer):
    """Mix each image with a partner image by Mixup or by CutMix, chosen per image; mix the labels.

    timm's ``timm.data.Mixup`` (the Mixup/CutMix of DeiT, ConvNeXt and Swin training scripts) as a
    Keras layer: every image draws its own choice, lambda and box in one pass over the batch, under
    XLA and in ``tf.data`` as the other layers. Same rules as
    :class:`maskmix.torch.RandomMixupOrCutMix`:

    Per image: a partner is drawn among the other images of the batch; with probability
    ``switch_prob`` the image is CutMix-ed, else Mixup-ed (``mixup_alpha=0``: always CutMix;
    ``cutmix_alpha=0``: always Mixup).

    * Mixup: ``lam ~ Beta(mixup_alpha, mixup_alpha)``, the image becomes
      ``lam * x + (1 - lam) * x_partner`` (float32 then rounded for uint8), the partner's label
      weight is ``1 - lam``.
    * CutMix: ``lam ~ Beta(cutmix_alpha, cutmix_alpha)`` and a box of the image's shape and area
      ``1 - lam``, centre uniform, clipped (``box_rounding`` ``"round"``, ``"truncate"`` or timm's
      ``"timm"``); or with ``cutmix_minmax=(lo, hi)`` timm's box, sides uniform over
      ``int(lo H) .. int(hi H) - 1`` pixels, fully inside. The partner's label weight is the box's
      exact pixel fraction.

    Segmentation masks are refused (a blended pixel has no single class).

    Args:
        mixup_alpha: ``Beta(alpha, alpha)`` parameter of the Mixup ``lam``, >= 0; 0 disables Mixup.
        cutmix_alpha: the same for CutMix, >= 0; 0 disables CutMix (not both 0).
        switch_prob: probability in ``[0, 1]`` of CutMix rather than Mixup when both are enabled.
        cutmix_minmax: None, or ``(lo, hi)`` with ``0 <= lo < hi <= 1``: timm's min/max box.
        box_rounding: ``"round"`` (default), ``"truncate"`` or ``"timm"``.
        **common: the common options; see :class:`~maskmix.keras.MixingLayer`.

    Shapes:
        a batch ``(B, H, W, C)`` (channels_first ``(B, C, H, W)``) and its labels; the labels come
        back as soft rows ``(B, K)``.

    Example:
        timm's ``Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=10)``:

        >>> import numpy as np
        >>> from maskmix.keras import RandomMixupOrCutMix
        >>> mix = RandomMixupOrCutMix.from_timm(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1,
        ...                                     num_classes=10, seed=0)
        >>> images = np.random.rand(8, 32, 32, 3).astype("float32")
        >>> images, soft = mix((images, np.random.randint(0, 10, size=(8,))))
        >>> tuple(soft.shape), bool(np.allclose(np.asarray(soft).sum(axis=1), 1.0))
        ((8, 10), True)
    """

    spec = RANDOM_MIXUP_OR_CUTMIX
    # Mixup blends whole images, which a hard mask cannot follow (as RandomMixup).
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
        """The layer that ``timm.data.Mixup(...)`` with the same arguments is, and defaults; the
        mapping and what is refused are those of :meth:`maskmix.torch.RandomMixupOrCutMix.from_timm`
        (``mode`` -> ``sampling`` with ``partner="flip"``, ``prob`` -> a per-unit probability).
        ``options`` are maskmix's own (``seed``, ``data_format``...); ``sampling``, ``augmentation_ratio``
        and ``bernoulli_mix``, which timm's ``mode`` and ``prob`` set, raise a ``ValueError`` (the timm
        argument would be dropped).

        Example:
            >>> from maskmix.keras import RandomMixupOrCutMix
            >>> mix = RandomMixupOrCutMix.from_timm(mixup_alpha=0.8, cutmix_alpha=1.0, mode="pair", num_classes=10)
            >>> mix.sampling, mix.partner, mix.bernoulli_mix
            ('pair', 'flip', True)
        """
        config = timm_mixup_config(
            f"{cls.__name__}.from_timm", mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha,
            cutmix_minmax=cutmix_minmax, prob=prob, switch_prob=switch_prob, mode=mode, correct_lam=correct_lam,
            label_smoothing=label_smoothing, num_classes=num_classes, multi_label=multi_label,
            mixup_off_epoch=mixup_off_epoch,
        )
        return cls(**with_own_options(f"{cls.__name__}.from_timm", config, options))

    def sample_mixing(self, draw: MixingDraw) -> dict[str, Any]:
        ops, seed = self.ops, draw.seed
        size, height, width = (draw.batch_size,), draw.height, draw.width
        mixup_on, cutmix_on = self.mixup_alpha > 0, self.cutmix_alpha > 0
        # One coin per draw (per image, or per unit with sampling): the tensor's shape is the
        # draws', which may be known only at run time; a disabled branch is never chosen.
        coin = ops.random.uniform(size, 0.0, 1.0, dtype="float32", seed=seed)
        use_cutmix = coin < (self.switch_prob if mixup_on and cutmix_on else float(cutmix_on))
        lam_cut = None
        if not cutmix_on:
            top = left = h = w = ops.cast(ops.numpy.zeros_like(coin), "int32")
        elif self.cutmix_minmax is None:
            lam_cut = _sampling.beta(ops, self.cutmix_alpha, size, seed)
            top, left, h, w = lambda_box(ops, lam_cut, size, height, width, self.box_rounding, seed)
        else:
            top, left, h, w = minmax_box(ops, self.cutmix_minmax, size, height, width, seed)
        if mixup_on and cutmix_on:
            # The Mixup images paste no box: their box is empty.
            h, w = _sampling.where(ops, use_cutmix, h, 0), _sampling.where(ops, use_cutmix, w, 0)
        params = partner_box(ops, top, left, h, w, height, width)
        if lam_cut is None:
            lam_cut = 1.0 - params["partner_weight"]  # the min/max box's own lambda
        if mixup_on:
            lam_mix = _sampling.beta(ops, self.mixup_alpha, size, seed)
            params["partner_weight"] = _sampling.where(ops, use_cutmix, params["partner_weight"], 1.0 - lam_mix)
            lam = _sampling.where(ops, use_cutmix, lam_cut, lam_mix) if cutmix_on else lam_mix
        else:
            lam = lam_cut
        params["lam"], params["use_cutmix"] = lam, use_cutmix
        return params

    def label_weight(self, transformation: Mapping[str, Any], dtype: str) -> Any:
        # In the labels' dtype, exact for float64 labels: the box's pixel fraction for the CutMix
        # images, 1 - lam for the Mixup ones.
        ops = self.ops
        boxed = super().label_weight(transformation, dtype)
        if self.mixup_alpha == 0:
            return boxed
        return _sampling.where(ops, transformation["use_cutmix"], boxed, 1.0 - ops.cast(transformation["lam"], dtype))

    def move_masks(self, masks: Any, transformation: Mapping[str, Any]) -> Any:
        raise ValueError(
            f"{type(self).__name__}: segmentation_masks cannot be mixed: the images it mixes by Mixup blend "
            "every pixel of two images, so no single class holds at a pixel; remove the 'segmentation_masks' "
            "key or use RandomCutMix"
        )

    def apply(self, images: Any, params: Mapping[str, Any]) -> Any:
        ops = self.ops
        _, _, height, width = self.dims(images)
        selected = params["selected"]
        out = images
        if self.mixup_alpha > 0:
            blending = ops.numpy.logical_and(ops.numpy.logical_not(params["use_cutmix"]), selected)
            out = _sampling.where(ops, self.per_image(blending), blend(self, images, params), images)
        if self.cutmix_alpha > 0:
            # The Mixup images' boxes are empty: one where pastes the CutMix images' boxes.
            box = _sampling.box_mask_of(ops, params, height, width)
            box = ops.numpy.logical_and(box, ops.numpy.reshape(selected, (-1, 1, 1)))
            out = _sampling.where(ops, self.pixel_mask(box), ops.numpy.take(images, params["partner"], axis=0), out)
        return out


def random_mixup_or_cutmix(
    images: Any,
    labels: Any,
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
) -> tuple[Any, Any]:
    """Functional form of :class:`RandomMixupOrCutMix`: returns ``(mixed_images, soft_labels)``.

    Each call builds a layer (and its seed generator); inside a compiled step build a
    :class:`RandomMixupOrCutMix` once and call it instead.

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import random_mixup_or_cutmix
        >>> x, y = random_mixup_or_cutmix(np.random.rand(4, 8, 8, 3).astype("float32"), np.arange(4), num_classes=4)
        >>> tuple(y.shape)
        (4, 4)
    """
    layer = RandomMixupOrCutMix(
        mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, switch_prob=switch_prob, cutmix_minmax=cutmix_minmax,
        box_rounding=box_rounding, num_classes=num_classes, label_smoothing=label_smoothing, partner=partner,
        **common,
    )
    return layer((images, labels))
