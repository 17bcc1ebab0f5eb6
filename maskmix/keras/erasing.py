"""Random Erasing: erase rectangles of random area and aspect ratio (Zhong et al., 2017)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from maskmix.geometry import ATTEMPTS
from maskmix.params import RANDOM_ERASING, given_arguments

from . import _sampling
from ._base import CommonOptions, MaskingLayer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RandomErasing"]


@keras.saving.register_keras_serializable(package="maskmix")
class RandomErasing(_sampling.RectanglePatches, MaskingLayer):
    """Erase one or more rectangles of random area and aspect ratio per image.

    Paper: Z. Zhong, L. Zheng, G. Kang, S. Li and Y. Yang, "Random Erasing Data Augmentation",
    AAAI 2020 (https://arxiv.org/abs/1708.04896). The defaults are not the paper's law (see
    "Reproducing the paper" below); timm's ``RandomErasing(probability, min_area, max_area, min_aspect,
    mode, min_count, max_count)`` maps to ``augmentation_ratio=probability, bernoulli_mix=True,
    patch_area=(min_area, max_area), patch_aspect_ratio=(min_aspect, 1 / min_aspect),
    fill_method="zero" | "normal_per_patch" | "normal", patch_count=(min_count, max_count)``.

    Shapes:
        ``(B, H, W, C)`` or ``(H, W, C)`` (channels_first: ``(B, C, H, W)``/``(C, H, W)``) in,
        same shape and dtype out.

    Per image: draw a patch count ``n`` uniformly in ``patch_count``. For each of the ``n``
    patches, draw an area fraction ``a`` uniformly in ``patch_area`` and divide it by ``n`` (as
    timm does, so that the total erased area keeps the configured scale), and an aspect ratio
    ``r = h / w`` log-uniformly (``aspect_law="uniform"``: uniformly) in ``patch_aspect_ratio``;
    the rectangle is ``h = round(sqrt(a H W r / n))`` by ``w = round(sqrt(a H W / (r n)))``
    pixels (at least 1). A rectangle that does not fit inside the image is redrawn, up to
    ``attempts`` candidates (drawn at once, the first that fits is kept). With ``fit="clamp"``
    a candidate fits when ``h <= H`` and ``w <= W``, and if none fits the first is clamped to the
    image; with ``fit="skip"`` it fits when ``h < H`` and ``w < W``, and if none fits the patch
    is not erased. It is placed uniformly, fully inside. Patches of one image may overlap. Same rule as
    :class:`maskmix.torch.RandomErasing`.

    Reproducing the paper: ``RandomErasing.from_paper("cifar")`` (also ``"fashion_mnist"``) is
    the official code's setting: per image with probability 0.5 (``augmentation_ratio=0.5,
    bernoulli_mix=True``), up to 100 tries (``attempts=100``) of an area ``U(0.02, 0.4)`` and an
    aspect ratio **uniform** in ``(0.3, 1 / 0.3)`` (``aspect_law="uniform"``; the log-uniform
    default puts half the rectangles taller than wide, the paper three quarters), kept only when
    ``h < H`` and ``w < W``, and nothing erased when every try fails (``fit="skip"``); the fill is
    the constants the official script writes into the normalised images (the CIFAR mean
    ``(0.4914, 0.4822, 0.4465)``). The paper's detection variants (image- and object-aware
    erasing) need the boxes and are not expressible.

    Args:
        patch_area: area of the erased region as a fraction of the image: a float in (0, 1) or a
            range ``(lo, hi)`` drawn uniformly. Default ``(0.05, 0.3)``.
        patch_aspect_ratio: height / width: a number > 0 or a range ``(lo, hi)`` drawn
            log-uniformly. Default ``(0.3, 3.0)``.
        patch_count: rectangles per image: a positive int or a range ``(lo, hi)`` drawn uniformly
            per image. Default 1.
        aspect_law: ``"log_uniform"`` (default) or ``"uniform"``: how the aspect ratio is drawn.
        fit: ``"clamp"`` (default) or ``"skip"``: the fit test and what happens when no
            candidate fits (see above).
        attempts: candidates drawn per rectangle, an int >= 1. Default 10.
        fill_method: what the erased rectangles are filled with; default ``"black"``.
        **common: common options and layer arguments; see :class:`~maskmix.keras.MaskingLayer` (and fills).

    Example:
        >>> import numpy as np
        >>> from maskmix.keras import RandomErasing
        >>> images = np.random.rand(8, 64, 64, 3).astype("float32")
        >>> out = RandomErasing(patch_count=(1, 3), fill_method="noise", seed=0)(images)
        >>> tuple(out.shape)
        (8, 64, 64, 3)
    """

    spec = RANDOM_ERASING
    patch_count: tuple[int, int]
    aspect_law: str
    fit: str
    attempts: int

    def __init__(
        self,
        *,
        patch_area: float | tuple[float, float] = (0.05, 0.3),
        patch_aspect_ratio: float | tuple[float, float] = (0.3, 3.0),
        patch_count: int | tuple[int, int] = 1,
        aspect_law: str = "log_uniform",
        fit: str = "clamp",
        attempts: int = ATTEMPTS,
        fill_method: str | float | tuple[float, ...] = "black",
        mask_fill: int | None = None,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**given_arguments(locals()))

    def sample_region(self, batch_size: Any, height: int, width: int, seed: Any) -> dict[str, Any]:
        ops = self.ops
        lo_count, max_count = self.patch_count
        count = _sampling.randint(ops, lo_count, max_count, (batch_size,), seed)
        # Every image draws `max_count` patches; those beyond its own count are disabled.
        active = ops.numpy.arange(max_count, dtype="int32") < ops.numpy.expand_dims(count, 1)
        shape, divisor = (batch_size, max_count), ops.numpy.expand_dims(count, 1)
        if (self.aspect_law, self.fit, self.attempts) == ("log_uniform", "clamp", ATTEMPTS):
            boxes = self.draw_boxes(ops, shape, height, width, seed, area_divisor=divisor)
        else:
            h, w, found = _sampling.paper_rectangles(
                ops, shape, height, width, self.patch_area, self.patch_aspect_ratio, seed,
                aspect_law=self.aspect_law, attempts=self.attempts, strict=self.fit == "skip", area_divisor=divisor)
            top, left = _sampling.place_inside(ops, h, w, height, width, seed)
            boxes = {"top": top, "left": left, "height": h, "width": w}
            if self.fit == "skip":
                # The official loop gives up after its tries and erases nothing.
                active = ops.numpy.logical_and(active, found)
        return {**boxes, "active": active, "count": count}

    def region_mask(self, params: Mapping[str, Any], height: int, width: int) -> Any:
        ops = self.ops
        boxes = _sampling.box_mask_of(ops, params, height, width)
        active = ops.numpy.expand_dims(ops.numpy.expand_dims(params["active"], -1), -1)
        return ops.numpy.any(ops.numpy.logical_and(boxes, active), axis=1)
