"""Random Erasing: erase rectangles of random area and aspect ratio (Zhong et al., 2017)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from typing_extensions import Unpack

from maskmix.geometry import ATTEMPTS
from maskmix.params import (
    RANDOM_ERASING,
    fraction_or_range,
    given_arguments,
    integer_at_least,
    number_in,
    positive_range,
)

from . import _sampling
from ._base import CommonOptions, MaskingTransform

__all__ = ["RandomErasing"]

_TIMM_MODES = {"const": "zero", "": "zero", "rand": "normal_per_patch", "pixel": "normal"}


class RandomErasing(_sampling.RectanglePatches, MaskingTransform):
    """Erase one or more rectangles of random area and aspect ratio per image.

    Paper: Z. Zhong, L. Zheng, G. Kang, S. Li and Y. Yang, "Random Erasing Data Augmentation",
    AAAI 2020 (https://arxiv.org/abs/1708.04896). The defaults are not the paper's law (see
    "Reproducing the paper" below). :meth:`from_timm` builds the transform from timm's arguments.

    Shapes:
        ``(..., C, H, W)`` in, same shape, dtype and device out.

    Per image: draw a patch count ``n`` uniformly in ``patch_count``. For each of the ``n``
    patches, draw an area fraction ``a`` uniformly in ``patch_area`` and divide it by ``n`` (as
    timm does, so that the total erased area keeps the configured scale), and an aspect ratio
    ``r = h / w`` log-uniformly (``aspect_law="uniform"``: uniformly) in ``patch_aspect_ratio``;
    the rectangle is ``h = round(sqrt(a H W r / n))`` by ``w = round(sqrt(a H W / (r n)))``
    pixels (at least 1). A rectangle that does not fit inside the image is redrawn, up to
    ``attempts`` candidates (drawn at once, the first that fits is kept). With ``fit="clamp"``
    a candidate fits when ``h <= H`` and ``w <= W``, and if none fits the first is clamped to the
    image; with ``fit="skip"`` it fits when ``h < H`` and ``w < W``, and if none fits the patch
    is not erased. It is placed uniformly, fully inside. Patches of one image may overlap.

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
        **common: common options; see :class:`~maskmix.torch.MaskingTransform`, which lists the fills.

    Example:
        >>> import torch
        >>> from maskmix.torch import RandomErasing
        >>> images = torch.rand(8, 3, 64, 64)
        >>> out = RandomErasing(patch_count=(1, 3), fill_method="noise")(images)
        >>> out.shape
        torch.Size([8, 3, 64, 64])
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

    @classmethod
    def from_timm(
        cls,
        probability: float = 0.5,
        min_area: float = 0.02,
        max_area: float = 1 / 3,
        min_aspect: float = 0.3,
        max_aspect: float | None = None,
        mode: str = "const",
        min_count: int = 1,
        max_count: int | None = None,
        num_splits: int = 0,
        device: str | torch.device | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> RandomErasing:
        """Build the transform from the arguments of ``timm.data.RandomErasing``.

        ``probability`` becomes a Bernoulli ``augmentation_ratio``; the area range is
        ``(min_area, max_area)``; the aspect range ``(min_aspect, max_aspect or 1 / min_aspect)``;
        ``mode`` ``'const'`` fills zeros, ``'rand'`` one normal colour per image and channel,
        ``'pixel'`` per-pixel normal noise; the count is uniform in
        ``[min_count, max_count or min_count]`` with the area split between the patches; with
        ``num_splits > 1`` the first ``B // num_splits`` images of a batch stay clean (the clean
        split of timm's AugMix/split-BN training). timm's ``device`` argument is accepted (so that
        timm's own call works unchanged) and ignored: the patches are drawn on the images'
        device. Differences from timm: the patches are drawn on-device for all images at once, a
        patch that does not fit after 10 candidates is clamped to the image instead of skipped, a
        patch as tall or as wide as the image fits (timm needs it strictly smaller), a side that
        rounds to 0 (images of a few pixels) is 1 pixel (timm's erases nothing), and ``'rand'``
        draws one colour per image rather than per patch.
        """
        name = cls.__name__ + ".from_timm"
        if not isinstance(mode, str) or mode.lower() not in _TIMM_MODES:
            raise ValueError(f"{name}: mode must be one of 'const', 'rand', 'pixel'; got {mode!r}")
        probability = number_in(0.0, 1.0, lo_open=False, hi_open=False)(name, "probability", probability)
        area = fraction_or_range()(name, "(min_area, max_area)", (min_area, max_area))
        min_aspect = number_in(0.0, float("inf"), lo_open=True, hi_open=True)(name, "min_aspect", min_aspect)
        if max_aspect is None:
            # timm's log-uniform range (log min, log 1/min) is symmetric: accept min_aspect > 1 too.
            min_aspect, max_aspect = sorted((min_aspect, 1.0 / min_aspect))
        aspect = positive_range()(name, "(min_aspect, max_aspect)", (min_aspect, max_aspect))
        min_count = integer_at_least(1)(name, "min_count", min_count)
        max_count = min_count if max_count is None else integer_at_least(1)(name, "max_count", max_count)
        if max_count < min_count:
            raise ValueError(
                f"{name}: max_count must be >= min_count; got min_count={min_count}, max_count={max_count}"
            )
        num_splits = integer_at_least(0)(name, "num_splits", num_splits)
        if device is not None and not isinstance(device, (str, torch.device)):
            raise TypeError(f"{name}: device must be a str, a torch.device or None; got {type(device).__name__}")
        transform = cls(
            patch_area=area,
            patch_aspect_ratio=aspect,
            patch_count=(min_count, max_count),
            fill_method=_TIMM_MODES[mode.lower()],
            augmentation_ratio=probability,
            bernoulli_mix=True,
            generator=generator,
        )
        transform._clean_splits = num_splits
        return transform

    def sample_region(self, batch_size: int, height: int, width: int, *, device: torch.device,
                      generator: torch.Generator | None) -> dict[str, Tensor]:
        lo_count, max_count = self.patch_count
        shape = (batch_size, max_count)
        divisor: Tensor | None = None
        if max_count == 1:
            # One patch per image, the whole area its own: nothing to draw, disable or divide.
            count, active = _sampling.kept(("erasing_one_patch", batch_size), device, lambda: (
                _sampling.cached_constant((1,), torch.int64, device).expand(batch_size),
                _sampling.cached_all_true(1, device).expand(shape)))
        else:
            count = _sampling.randint(lo_count, max_count, (batch_size,), device=device, generator=generator)
            # Every image draws `max_count` patches; those beyond its own count are disabled.
            active = _sampling.cached_arange(max_count, device) < count.unsqueeze(1)
            divisor = count.view(-1, 1)
        if (self.aspect_law, self.fit, self.attempts) == ("log_uniform", "clamp", ATTEMPTS):
            # Rows and columns in the last dim (box_keep's layout); the other keys are views of them.
            sizes = _sampling.fitting_box_sizes(shape, height, width, self.patch_area, self.patch_aspect_ratio,
                                                area_divisor=divisor, device=device, generator=generator)
        else:
            h, w, found = _sampling.paper_rectangles(
                shape, height, width, self.patch_area, self.patch_aspect_ratio, aspect_law=self.aspect_law,
                attempts=self.attempts, strict=self.fit == "skip", area_divisor=divisor, device=device,
                generator=generator)
            if self.fit == "skip":
                # The official loop gives up after its tries and erases nothing.
                active = active & found
            sizes = torch.stack((h, w), -1)
        starts = _sampling.place_sizes(sizes, height, width, generator=generator)
        (top, left), (box_height, box_width) = starts.unbind(-1), sizes.unbind(-1)  # one call each
        return {"top": top, "left": left, "height": box_height, "width": box_width,
                "box_start": starts, "box_end": starts + sizes, "active": active, "count": count}

    def region_keep(self, params: Mapping[str, Any], height: int, width: int, dtype: torch.dtype, *,
                    within: Tensor | None = None) -> Tensor:
        # One patch per image is always active, unless the official fit skipped it.
        if not (self.patch_count[1] == 1 and self.fit != "skip"):
            within = params["active"] if within is None else _sampling.mask_and(params["active"], within.view(-1, 1))
        elif within is not None:
            within = within.view(-1, 1)
        keep = _sampling.box_keep(params["box_start"], params["box_end"], height, width, dtype, within=within)
        return keep.squeeze(1) if keep.shape[1] == 1 else keep.amin(dim=1)  # kept where no patch covers it
