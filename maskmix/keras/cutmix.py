"""CutMix: paste a box of a partner image, mix labels by pixel fraction (Yun et al., 2019)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.params import RANDOM_CUTMIX, given_arguments

from . import _sampling
from ._base import CommonOptions
from ._mixing import FunctionOptions, MixingDraw, MixingLayer, box_fraction, mix_once

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomCutMix", "lambda_box", "partner_box", "random_cutmix"]


def partner_box(ops: Any, top: Any, left: Any, h: Any, w: Any, height: Any, width: Any) -> dict[str, Any]:
    """Parameters of per-image ``h x w`` boxes that receive a partner's pixels (CutMix, the mixed
    Cut-Thumbnail), with their label weight (the fraction of the image they cover) and the
    image's pixel count ``H * W``, ``(B,)`` like the others."""
    return {"top": top, "left": left, "height": h, "width": w,
            "partner_weight": box_fraction(ops, h, w, height, width),
            "image_pixels": ops.numpy.zeros_like(h) + height * width}


def lambda_box(ops: Any, lam: Any, size: Any, height: Any, width: Any, rounding: str,
               seed: Any) -> tuple[Any, Any, Any, Any]:
    """Int32 ``(top, left, h, w)`` of per-image boxes of the image's shape and area ``1 - lam``
    (``size`` is ``lam``'s shape), centred uniformly over the pixels and clipped: the rules of
    :func:`maskmix.torch.cutmix.lambda_box` (``rounding``: ``"round"``, ``"truncate"``, ``"timm"``)."""
    side = ops.numpy.sqrt(1.0 - lam)
    # Floor is the official int() here: the products are non-negative.
    to_pixels = ops.numpy.floor if rounding in ("truncate", "timm") else ops.numpy.round
    cut_h = ops.cast(to_pixels(side * ops.cast(height, "float32")), "int32")
    cut_w = ops.cast(to_pixels(side * ops.cast(width, "float32")), "int32")
    center_y, center_x = _sampling.randints(ops, [(0, height - 1), (0, width - 1)], size, seed)
    half_h, half_w = ops.numpy.floor_divide(cut_h, 2), ops.numpy.floor_divide(cut_w, 2)
    y0, x0 = center_y - half_h, center_x - half_w
    # The official box ends at c + cut // 2: an odd cut loses a pixel.
    odd_loses = rounding == "truncate"
    y1 = center_y + half_h if odd_loses else y0 + cut_h
    x1 = center_x + half_w if odd_loses else x0 + cut_w
    top, left = ops.numpy.clip(y0, 0, height), ops.numpy.clip(x0, 0, width)
    return top, left, ops.numpy.clip(y1, 0, height) - top, ops.numpy.clip(x1, 0, width) - left


@keras.saving.register_keras_serializable(package="maskmix")
class RandomCutMix(MixingLayer):
    """Replace a box of each image by the same box of a partner image; mix the labels likewise.

    Paper: S. Yun, D. Han, S. J. Oh, S. Chun, J. Choe and Y. Yoo, "CutMix: Regularization Strategy
    to Train Strong Classifiers with Localizable Features", ICCV 2019 (https://arxiv.org/abs/1905.04899).

    Per image: a partner is drawn uniformly among the other images of the batch and
    ``lam ~ Beta(alpha, alpha)`` (an XLA-compatible sampler, see
    :func:`maskmix.keras._sampling.beta`).

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
    ``H * W`` (after clipping). Same rules as :class:`maskmix.torch.RandomCutMix`.

    Args:
        alpha: ``Beta(alpha, alpha)`` parameter, > 0. Default 1.0 (lam uniform).
        patch_area: None, or the area range of the original library's variant (float or pair).
        patch_aspect_ratio: None, or the aspect range of that variant (number or pair).
        box_rounding: ``"round"`` (default) or ``"truncate"`` (the official code's box); only for
            the box of area ``1 - lam`` (``patch_area`` and ``patch_aspect_ratio`` None): the
            variant's box does not use it.
        **common: the common options; see :class:`~maskmix.keras.MixingLayer`, which also
            documents ``num_classes``, ``label_smoothing`` and ``partner`` (each image's partner:
            ``"other"``, ``"permutation"`` or ``"flip"``).

    Reproducing the paper: ``RandomCutMix.from_paper("cifar")`` (``"imagenet"``) sets
    ``alpha=1``, ``box_rounding="truncate"`` and the official ``cutmix_prob`` (0.5 on CIFAR, 1 on
    ImageNet) as the probability that a batch is mixed, as the official ``train.py``: one ``lam``
    and one box for the whole batch (``sampling="batch"``), one coin per batch
    (``bernoulli_mix=True``) and partners by ``torch.randperm`` (``partner="permutation"``; an
    image that meets itself is left as it is).

    Shapes:
        a batch ``(B, H, W, C)`` (channels_first ``(B, C, H, W)``) and its labels; each image
        comes back with one box from its partner, and the labels as ``(B, K)`` rows weighted by
        box area.

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomCutMix
        >>> images = np.random.rand(8, 32, 32, 3).astype("float32")
        >>> labels = np.random.randint(0, 10, size=(8,))
        >>> out, soft = RandomCutMix(num_classes=10, seed=0)((images, labels))
        >>> tuple(soft.shape)
        (8, 10)
    """

    spec = RANDOM_CUTMIX
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
        ops, seed = self.ops, draw.seed
        size, height, width = (draw.batch_size,), draw.height, draw.width
        lam = _sampling.beta(ops, self.alpha, size, seed)
        fheight, fwidth = ops.cast(height, "float32"), ops.cast(width, "float32")
        if self.patch_area is None and self.patch_aspect_ratio is None:
            top, left, h, w = lambda_box(ops, lam, size, height, width, self.box_rounding, seed)
        else:
            lo, hi = self.patch_area if self.patch_area is not None else (0.0, 1.0)
            area = lo + (hi - lo) * lam
            if self.patch_aspect_ratio is not None:
                aspect = _sampling.log_uniform(ops, *self.patch_aspect_ratio, size, seed)
            else:
                aspect = ops.numpy.ones(size, dtype="float32") * (fheight / ops.numpy.maximum(fwidth, 1.0))
            h, w = _sampling.rectangle_sizes(ops, area, aspect, height, width)
            h, w = ops.numpy.minimum(h, height), ops.numpy.minimum(w, width)
            top, left = _sampling.place_inside(ops, h, w, height, width, seed)
        return {"lam": lam, **partner_box(ops, top, left, h, w, height, width)}

    def move_masks(self, masks: Any, transformation: Mapping[str, Any]) -> Any:
        # The partner's mask region is pasted with the partner's pixels: the same box, any dtype.
        return self.apply(masks, transformation)

    def apply(self, images: Any, params: Mapping[str, Any]) -> Any:
        ops = self.ops
        _, _, height, width = self.dims(images)
        box = _sampling.box_mask_of(ops, params, height, width)
        box = ops.numpy.logical_and(box, ops.numpy.reshape(params["selected"], (-1, 1, 1)))
        return _sampling.where(ops, self.pixel_mask(box), ops.numpy.take(images, params["partner"], axis=0), images)


def random_cutmix(
    images: Any,
    labels: Any,
    *,
    alpha: float = 1.0,
    patch_area: float | tuple[float, float] | None = None,
    patch_aspect_ratio: float | tuple[float, float] | None = None,
    box_rounding: str = "round",
    num_classes: int | None = None,
    label_smoothing: float = 0.0,
    partner: str = "other",
    seed: int | tuple[Any, Any] | Any | None = None,
    **common: Unpack[FunctionOptions],
) -> tuple[Any, Any]:
    """Functional form of :class:`RandomCutMix`: returns ``(mixed_images, soft_labels)``.

    Seeds are stateless, as for Keras' random ops (``keras.random.uniform(..., seed=7)``): the
    same ``seed`` and inputs give the same output at every call, and no variable is created, so
    the function runs inside ``tf.function`` (also ``jit_compile=True``), ``tf.data.Dataset.map``
    and ``jax.jit``. ``seed`` is an int in ``[0, 2**31)``, or a pair of integers (a tuple, or a
    ``(2,)`` integer tensor) to change from step to step, e.g. ``(7, step)`` or, in a dataset,
    ``ds.enumerate().map(lambda i, b: random_cutmix(*b, num_classes=10, seed=(7, i)))``. ``None`` (default)
    draws a fresh seed per call when called eagerly, and is an error inside a traced function
    (where a seed drawn at trace time would repeat at every step). A
    :class:`RandomCutMix` layer keeps its own ``SeedGenerator`` state instead: build it once to call it
    from a training step.

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import random_cutmix
        >>> x, y = random_cutmix(np.random.rand(4, 8, 8, 3).astype("float32"), np.arange(4), num_classes=4)
        >>> [float(v) for v in np.asarray(y).sum(axis=1)]
        [1.0, 1.0, 1.0, 1.0]
    """
    return mix_once(
        RandomCutMix, "random_cutmix", images, labels, seed,
        alpha=alpha, patch_area=patch_area, patch_aspect_ratio=patch_aspect_ratio, box_rounding=box_rounding,
        num_classes=num_classes, label_smoothing=label_smoothing, partner=partner, **common,
    )
