"""Host-side geometry and constants shared by the torch and Keras strategies.

Everything the two frameworks compute *on the host* (in Python, before any tensor is drawn) lives
here once: the static size ranges the resampling matrices are built for, the bounds of the
log-uniform draws, the constants of the samplers and of the colour jitter, the image dtypes.
:mod:`maskmix.torch` and :mod:`maskmix.keras` import these values, so both frameworks agree by
construction rather than by keeping two copies in step. Per-image quantities are drawn on the
device by each framework's ``_sampling`` module; this module never sees a tensor.

Example:
    >>> from maskmix.geometry import low_resolution_size_range, thumbnail_size_range
    >>> thumbnail_size_range((0.1, 0.25), 224, 224)
    ((71, 71), (112, 112))
    >>> low_resolution_size_range((0.1, 0.5), 33)
    (3, 17)

This module imports nothing beyond the standard library (not torch, not keras).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "ASPECT_LAWS",
    "ATTEMPTS",
    "CHOICE_STREAM",
    "DEVICE_STREAM",
    "FIT_RULES",
    "FLOAT_DTYPES",
    "GAMMA_PROPOSALS",
    "IMAGE_DTYPES",
    "IMAGE_DTYPES_TEXT",
    "INT_DTYPES",
    "LOG_UNIFORM_LIMITS",
    "LUMA_WEIGHTS",
    "MASK64",
    "PARTNER_LAWS",
    "SAMPLING_MODES",
    "ceil_product_table",
    "derive_seed",
    "gamma_proposal_constants",
    "image_aspect",
    "log_uniform_bounds",
    "looks_transposed",
    "low_resolution_size",
    "low_resolution_size_range",
    "lower_resolution",
    "pixel_changer",
    "pixel_layout",
    "rectangles_always_fit",
    "rectangles_never_empty",
    "rotation_range",
    "sampling_units",
    "thumbnail_side",
    "thumbnail_size_range",
    "unit_pixels_bounds",
]

#: How many candidate rectangles are drawn per patch before falling back to clamping (the
#: vectorised form of torchvision's and timm's "try up to 10 times" loop).
ATTEMPTS = 10

#: Marsaglia-Tsang proposals drawn per gamma sample; all of them are rejected with probability < 1e-10.
GAMMA_PROPOSALS = 8

#: Below this Beta(alpha, alpha) parameter a gamma variable's boost ``log(U) / alpha`` overflows
#: float32 (to -inf, and two of them made lam NaN): the samplers compare the two boosts first.
#: Beyond :data:`MAX_BETA_ALPHA` float32 sampling fails, and Beta(alpha, alpha) is 0.5 in float32
#: long before (its spread is ``1 / sqrt(8 alpha)``): such values are refused.
TINY_BETA_ALPHA = 1e-30
MAX_BETA_ALPHA = 1e30

#: ITU-R 601 luma weights of (R, G, B), as torchvision's ``rgb_to_grayscale`` (CutPaste's jitter).
LUMA_WEIGHTS: tuple[float, float, float] = (0.2989, 0.587, 0.114)

#: Floating image dtypes every transform accepts, by name (design §Conventions).
FLOAT_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")

#: Integer dtypes, by name (Keras' standardised names): labels of class indices, masks.
INT_DTYPES: frozenset[str] = frozenset({"uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"})

#: Every image dtype accepted (design §Conventions), by name: the floats and uint8.
IMAGE_DTYPES: tuple[str, ...] = (*FLOAT_DTYPES, "uint8")

#: :data:`IMAGE_DTYPES` as error messages spell them.
IMAGE_DTYPES_TEXT = ", ".join(IMAGE_DTYPES[:-1]) + " or " + IMAGE_DTYPES[-1]

#: Log-uniform bounds are clamped into this range: float32 holds it, and for aspect ratios any
#: value beyond an image's pixel count gives the same one-pixel-wide rectangle.
LOG_UNIFORM_LIMITS: tuple[float, float] = (1e-30, 1e30)


def log_uniform_bounds(low: float, high: float) -> tuple[float, float]:
    """``(low, high)`` clamped into :data:`LOG_UNIFORM_LIMITS`, as floats.

    >>> log_uniform_bounds(0.0, 1e40)
    (1e-30, 1e+30)
    """
    floor, ceiling = LOG_UNIFORM_LIMITS
    return min(max(float(low), floor), ceiling), min(max(float(high), floor), ceiling)


#: Relative margin on a rectangle side before rounding: covers the float32 arithmetic of the
#: draws (a few roundings of ``2 ** -24`` each) many times over.
_SIDE_MARGIN = 1.0 + 1e-4


def looks_transposed(channels: int | None, other: int | None) -> bool:
    """Whether an image looks laid out in the other ``data_format``: more than 4 values on its
    channel axis while the axis that holds the channels in the other layout has 1 to 4 (a grey,
    two-channel (optical flow, a complex field), RGB or RGBA image), e.g. a channels-first
    ``(B, 3, 32, 32)`` batch read as channels-last (32 channels of 3 x 32 pixels). Such a batch
    would be erased or mixed along the wrong axes without any error; an image 1 to 4 pixels high
    (wide) with more than 4 channels is not a picture this library is for. Unknown sizes
    (``None``, in a traced graph) say nothing."""
    return channels is not None and other is not None and channels > 4 and 1 <= other <= 4


def pixel_changer(transforms: Iterable[Any], *, moves_pixels: Callable[[Any], bool] | None = None,
                  mask_fill: bool = True) -> tuple[Any, str] | None:
    """The first of ``transforms`` (maskmix transforms or layers) that would leave per-pixel
    targets carried beside the images behind, and what it does: ``"moves pixels"`` (its class
    declares ``dense_targets`` other than ``"keep"``, or ``moves_pixels`` says so of another
    library's transform: a flip, a crop) or, unless ``mask_fill`` is False (for boxes and
    keypoints, which ``mask_fill`` does not concern), ``"writes mask_fill"``; None when every one
    keeps the pixels in place."""
    for transform in transforms:
        if getattr(transform, "dense_targets", "keep") != "keep" or (moves_pixels and moves_pixels(transform)):
            return transform, "moves pixels"
        if mask_fill and getattr(transform, "mask_fill", None) is not None:
            return transform, "writes mask_fill"
    return None


def pixel_layout(image: tuple[Any, ...], shape: tuple[Any, ...], channels_first: bool, *,
                 integer: bool = False) -> str | None:
    """How labels of ``shape`` lie on images of shape ``image`` (rank 4): ``"laid_out"`` for
    per-pixel targets with the images' height and width (rank 3, or rank 4 in the images'
    layout), ``"grid"`` for rank-4 targets at another size (masks at another resolution, a grid of
    targets) and, for ``integer`` (or bool) labels, rank-3 ones at another size (``(B, h, w)``
    class maps at a lower resolution), None for labels that are not on the pixels (``(B,)``,
    ``(B, K)``, float ``(B, T, V)`` one-hot sequences)."""
    if len(image) != 4 or len(shape) < 3:
        return None
    size = image[2:4] if channels_first else image[1:3]
    spatial = [shape[1:3]] if len(shape) == 3 else [shape[1:3], shape[2:4]] if len(shape) == 4 else []
    if size in spatial:
        return "laid_out"
    if len(shape) == 3 and integer and lower_resolution(tuple(size), tuple(shape[1:3])):
        return "grid"
    return "grid" if len(shape) == 4 else None


def lower_resolution(size: tuple[Any, ...], small: tuple[Any, ...]) -> bool:
    """Whether ``small`` ``(h, w)`` looks like the images' ``size`` ``(H, W)`` scaled down by one
    factor (``h <= H``, ``w <= W``, ``H w == W h``): an integer ``(B, h, w)`` tensor so shaped is a
    class map at a lower resolution, while token ids ``(B, 5, 77)`` or boxes ``(B, N, 4)`` next
    to square images of another shape are not. Unknown sizes (None) are not."""
    if None in size or None in small:
        return False
    (height, width), (h, w) = size, small
    return 0 < h <= height and 0 < w <= width and height * w == width * h


def rectangles_always_fit(height: int, width: int, patch_area: tuple[float, float],
                          patch_aspect_ratio: tuple[float, float]) -> bool:
    """Whether every rectangle of the "area fraction and aspect ratio" law fits in an image, so
    that the first of the :data:`ATTEMPTS` candidates is always the one kept and drawing the
    others only spends random numbers.

    The sides ``round(sqrt(a H W r))`` and ``round(sqrt(a H W / r))`` grow with the area ``a`` and
    with ``r`` (``1 / r``); at the largest area and the extreme ratios they must round to at most
    ``H`` and ``W``, by a relative margin of ``1e-4`` (float32 arithmetic): a rectangle that could
    reach ``H + 0.5`` keeps the tries. An area divided between several patches is smaller still,
    so the answer holds for it too.

    >>> rectangles_always_fit(32, 32, (0.05, 0.3), (0.3, 3.0))  # at most 30 x 30 pixels
    True
    >>> rectangles_always_fit(32, 32, (0.02, 1 / 3), (0.3, 1 / 0.3))  # up to 34 pixels tall
    False
    """
    low, high = log_uniform_bounds(*patch_aspect_ratio)
    target = float(patch_area[1]) * height * width
    return (math.sqrt(target * high) * _SIDE_MARGIN < height + 0.5
            and math.sqrt(target / low) * _SIDE_MARGIN < width + 0.5)


def rectangles_never_empty(height: int, width: int, patch_area: tuple[float, float],
                           patch_aspect_ratio: tuple[float, float]) -> bool:
    """Whether every side of the "area fraction and aspect ratio" law (undivided areas) rounds to
    at least one pixel, so that its lower clamp to 1 changes nothing: at the smallest area and
    the extreme ratios both sides exceed ``0.5`` by the margin of :func:`rectangles_always_fit`.

    >>> rectangles_never_empty(32, 32, (0.05, 0.3), (0.3, 3.0))  # at least 4 pixels
    True
    >>> rectangles_never_empty(32, 32, (0.05, 0.3), (1e-3, 1e3))  # down to 0.2 pixels
    False
    """
    low, high = log_uniform_bounds(*patch_aspect_ratio)
    target = float(patch_area[0]) * height * width
    return math.sqrt(target * low) > 0.5 * _SIDE_MARGIN and math.sqrt(target / high) > 0.5 * _SIDE_MARGIN


def thumbnail_side(size: int, area: float) -> int:
    """Pixels of a thumbnail side: ``round(size * sqrt(area))``, at least 1, at most ``size``."""
    return max(1, min(size, round(size * math.sqrt(area))))


def thumbnail_size_range(area: tuple[float, float], height: int, width: int
                         ) -> tuple[tuple[int, int], tuple[int, int]]:
    """The smallest and largest ``(th, tw)`` a thumbnail area range allows for an ``H x W`` image.

    The thumbnail keeps the image's aspect ratio (Cut-Thumbnail, Xie et al., 2021); the ends are
    computed in float64 here, and the per-image sizes drawn in float32 are clamped to them.
    """
    lo, hi = area
    return (thumbnail_side(height, lo), thumbnail_side(width, lo)), (thumbnail_side(height, hi),
                                                                      thumbnail_side(width, hi))


def low_resolution_size(factor: float, size: int) -> int:
    """Pixels of a low-resolution copy: ``round(size * factor)`` (halves up), in ``[1, size]``."""
    return min(max(math.floor(factor * size + 0.5), 1), size)


def low_resolution_size_range(blur_factor: tuple[float, float], size: int) -> tuple[int, int]:
    """The smallest and largest low-resolution size a ``blur_factor`` range allows (CutBlur)."""
    lo, hi = blur_factor
    return low_resolution_size(lo, size), low_resolution_size(hi, size)


def image_aspect(height: int, width: int) -> float:
    """``H / W`` (``H`` for an image 0 pixels wide): the aspect of CutMix's box when only its area is set."""
    return height / max(width, 1)


def rotation_range(degrees: float) -> tuple[float, float]:
    """``(-r, r)`` in radians for a maximum rotation of ``degrees`` (GridMask)."""
    limit = math.radians(degrees)
    return -limit, limit


def gamma_proposal_constants(alpha: float) -> tuple[bool, float, float]:
    """``(boosted, d, c)`` of Marsaglia and Tsang's gamma sampler for Gamma(alpha, 1).

    ``alpha < 1`` is sampled as Gamma(alpha + 1) boosted by ``U^(1 / alpha)``; then
    ``d = a - 1/3`` and ``c = 1 / sqrt(9 d)`` ("A simple method for generating gamma variables",
    2000).

    >>> boosted, d, c = gamma_proposal_constants(0.5)
    >>> boosted, round(d, 4), round(c, 4)
    (True, 1.1667, 0.3086)
    """
    boosted = alpha < 1.0
    d = (alpha + 1.0 if boosted else alpha) - 1.0 / 3.0
    return boosted, d, 1.0 / math.sqrt(9.0 * d)


#: How Random Erasing draws the aspect ratio in ``patch_aspect_ratio``: log-uniformly (maskmix,
#: torchvision, timm) or uniformly (the paper's official code).
ASPECT_LAWS: tuple[str, ...] = ("log_uniform", "uniform")

#: Random Erasing's fit rules: ``"clamp"`` (a candidate fits when ``h <= H`` and ``w <= W``; if
#: none does, the first is clamped) or ``"skip"`` (the paper's code: ``h < H`` and ``w < W``; if
#: none does, nothing is erased).
FIT_RULES: tuple[str, ...] = ("clamp", "skip")

#: What one parameter draw covers (design §Conventions, sampling modes): ``"image"`` one draw per
#: image (per clip of a Video); ``"batch"`` one draw for the whole batch (the papers' CutMix, Mixup,
#: CutBlur, Cut-Thumbnail; Kornia's ``same_on_batch``); ``"pair"`` one draw per pair of images
#: ``i`` and ``B - 1 - i`` (timm's ``mode="pair"``), the middle image of an odd batch alone.
SAMPLING_MODES: tuple[str, ...] = ("image", "batch", "pair")

#: How a mixing strategy pairs each image with a partner: ``"other"`` uniform among the other
#: images; ``"permutation"`` a uniform random permutation (``torch.randperm``: an image may meet
#: itself); ``"flip"`` image ``i`` with ``B - 1 - i`` (timm's ``x.flip(0)``).
PARTNER_LAWS: tuple[str, ...] = ("other", "permutation", "flip")


def sampling_units(mode: str, batch_size: int) -> int:
    """How many independent draws a batch of ``batch_size`` images (or clips) takes in ``mode``.

    Image ``i`` takes draw ``i`` (``"image"``), draw 0 (``"batch"``) or draw ``min(i, B - 1 - i)``
    (``"pair"``).

    >>> [sampling_units(mode, 5) for mode in SAMPLING_MODES], sampling_units("batch", 0)
    ([5, 1, 3], 0)
    """
    if mode == "batch":
        return min(batch_size, 1)
    if mode == "pair":
        return (batch_size + 1) // 2
    return batch_size


def ceil_product_table(ratio: float, largest: int) -> tuple[int, ...]:
    """``math.ceil(d * ratio)`` for ``d = 0, ..., largest``, as Python computes it (float64).

    GridMask's official kept band (``math.ceil(d * ratio)``): a float32 product on the device
    would round up past an integer for some ``d`` (``0.6 * 5`` is ``3.0000001`` in float32,
    ``3.0`` in float64), so the bands are computed here once and looked up per image.

    >>> ceil_product_table(0.6, 5)
    (0, 1, 2, 2, 3, 3)
    """
    return tuple(math.ceil(d * ratio) for d in range(largest + 1))


def unit_pixels_bounds(unit_pixels: tuple[int, int | None], height: int, width: int) -> tuple[int, int]:
    """GridMask's unit range in pixels for an ``H x W`` image: ``(lo, max(lo, min(hi, min(H, W) - 1)))``.

    The official code draws ``randint(d1, d2)`` with ``d2`` at most the image's shorter side
    (excluded); ``hi=None`` is that side minus one. The range never falls below ``lo``: on an
    image smaller than the unit the grid is simply coarser than the image.

    >>> unit_pixels_bounds((2, None), 32, 48), unit_pixels_bounds((96, 223), 32, 32)
    ((2, 31), (96, 96))
    """
    lo, hi = unit_pixels
    top = min(height, width) - 1 if hi is None else min(hi, min(height, width) - 1)
    return lo, max(lo, top)


#: Seeds are 64-bit.
MASK64 = (1 << 64) - 1

#: Stream ids the pipelines mix into :func:`derive_seed`: the per-batch draws on the device, and
#: the host's choice among the mix transforms (both frameworks).
DEVICE_STREAM, CHOICE_STREAM = 0, 1


def _splitmix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK64
    return value ^ (value >> 31)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (splitmix64 chain); equal parts give equal seeds.

    Both frameworks' integrations derive the seeds of their separate streams with it (a stream
    id among the parts), so that no stream replays another seeded with the same number."""
    state = 0
    for part in parts:
        state = _splitmix64(state ^ (part & MASK64))
    return state >> 1
