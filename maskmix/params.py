"""Framework-free parameter specifications for the ten maskmix strategies.

Every strategy's parameter names, defaults and validation rules live here, once. The torch
transforms (:mod:`maskmix.torch`) and the Keras layers (:mod:`maskmix.keras`) both call
:meth:`StrategySpec.validate` in their constructors, so a bad argument produces the same
``ValueError``/``TypeError`` message whatever the framework.

Validated values are *normalised*: ranges become ``(lo, hi)`` tuples of floats, counts become
``(lo, hi)`` tuples of ints, Hide-and-Seek grid sizes become a tuple of ``(rows, cols)``
candidates. Normalised values are themselves valid inputs, so a configuration written out by
``get_config`` (where tuples may become lists) validates back to the same values.

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FILL_METHODS",
    "RANDOM_CUTBLUR",
    "RANDOM_CUTMIX",
    "RANDOM_CUTOUT",
    "RANDOM_CUTPASTE",
    "RANDOM_CUTSWAP",
    "RANDOM_CUT_THUMBNAIL",
    "RANDOM_ERASING",
    "RANDOM_GRID_MASK",
    "RANDOM_HIDE_AND_SEEK",
    "RANDOM_MIXUP",
    "RESIZE_METHODS",
    "SPECS",
    "Param",
    "StrategySpec",
    "num_selected",
]

#: Fill methods understood by every masking strategy (SPEC §3, "Fill methods").
FILL_METHODS: tuple[str, ...] = (
    "black",
    "gray",
    "white",
    "mean_per_channel",
    "random",
    "noise",
    "zero",
    "normal",
    "normal_per_patch",
)

#: Interpolation methods for the strategies that resize (CutBlur, Cut-Thumbnail).
RESIZE_METHODS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "area")

Checker = Callable[[str, str, Any], Any]


# --------------------------------------------------------------------------------------------
# Primitive checks. Each takes (owner, name, value) and returns the normalised value or raises.
# --------------------------------------------------------------------------------------------


def _fail(owner: str, name: str, expected: str, value: Any, exc: type[Exception] = ValueError) -> None:
    raise exc(f"{owner}: {name} must be {expected}; got {value!r}")


def _is_bool(value: Any) -> bool:
    # numpy.bool_ is not a subclass of bool; recognise it by name so numpy stays optional.
    return isinstance(value, bool) or type(value).__name__ in ("bool_", "bool")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not _is_bool(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def _is_finite_real(value: Any) -> bool:
    return _is_real(value) and math.isfinite(float(value))


def _is_pair(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2


def _type_for(value: Any, all_numbers: bool) -> type[Exception]:
    """TypeError for values of the wrong kind, ValueError for values of the right kind out of range."""
    return ValueError if all_numbers else TypeError


def boolean() -> Checker:
    def check(owner: str, name: str, value: Any) -> bool:
        if not _is_bool(value):
            _fail(owner, name, "a bool", value, TypeError)
        return bool(value)

    return check


def number_in(lo: float, hi: float, *, lo_open: bool, hi_open: bool) -> Checker:
    """A finite real number in an interval."""
    interval = f"{'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"
    expected = f"a float in {interval}"

    def check(owner: str, name: str, value: Any) -> float:
        if not _is_real(value):
            _fail(owner, name, expected, value, TypeError)
        v = float(value)
        if not (_inside(v, lo, hi, lo_open, hi_open)):
            _fail(owner, name, expected, value)
        return v

    return check


def fraction_or_range(*, allow_one: bool = False) -> Checker:
    """A fraction in (0, 1) (or (0, 1]) or an ordered pair of them; normalised to ``(lo, hi)``."""
    close = "]" if allow_one else ")"
    le = "<=" if allow_one else "<"
    expected = f"a float in (0, 1{close} or a pair (lo, hi) with 0 < lo <= hi {le} 1"

    def ok(v: Any) -> bool:
        return _is_finite_real(v) and _inside(float(v), 0.0, 1.0, True, not allow_one)

    def check(owner: str, name: str, value: Any) -> tuple[float, float]:
        if _is_real(value):
            if not ok(value):
                _fail(owner, name, expected, value)
            return (float(value), float(value))
        if _is_pair(value):
            lo, hi = value
            if not (_is_real(lo) and _is_real(hi)):
                _fail(owner, name, expected, value, TypeError)
            if not (ok(lo) and ok(hi) and float(lo) <= float(hi)):
                _fail(owner, name, expected, value)
            return (float(lo), float(hi))
        _fail(owner, name, expected, value, _type_for(value, isinstance(value, (tuple, list))))
        raise AssertionError  # unreachable, keeps type checkers happy

    return check


def positive_range() -> Checker:
    """A number > 0 (fixed) or an ordered pair ``(lo, hi)`` with ``0 < lo <= hi``."""
    expected = "a float > 0 or a pair (lo, hi) with 0 < lo <= hi"

    def ok(v: Any) -> bool:
        return _is_finite_real(v) and float(v) > 0

    def check(owner: str, name: str, value: Any) -> tuple[float, float]:
        if _is_real(value):
            if not ok(value):
                _fail(owner, name, expected, value)
            return (float(value), float(value))
        if _is_pair(value):
            lo, hi = value
            if not (_is_real(lo) and _is_real(hi)):
                _fail(owner, name, expected, value, TypeError)
            if not (ok(lo) and ok(hi) and float(lo) <= float(hi)):
                _fail(owner, name, expected, value)
            return (float(lo), float(hi))
        _fail(owner, name, expected, value, _type_for(value, isinstance(value, (tuple, list))))
        raise AssertionError

    return check


def count_range(minimum: int) -> Checker:
    """An integer >= minimum or an ordered pair of them; normalised to ``(lo, hi)``."""
    word = "positive integer" if minimum == 1 else f"integer >= {minimum}"
    expected = f"a {word} or a pair (lo, hi) of integers with {minimum} <= lo <= hi"

    def check(owner: str, name: str, value: Any) -> tuple[int, int]:
        if _is_int(value):
            if int(value) < minimum:
                _fail(owner, name, expected, value)
            return (int(value), int(value))
        if _is_pair(value):
            lo, hi = value
            if not (_is_int(lo) and _is_int(hi)):
                _fail(owner, name, expected, value, TypeError)
            if not (minimum <= int(lo) <= int(hi)):
                _fail(owner, name, expected, value)
            return (int(lo), int(hi))
        _fail(owner, name, expected, value, TypeError)
        raise AssertionError

    return check


def integer_at_least(minimum: int) -> Checker:
    expected = f"an integer >= {minimum}"

    def check(owner: str, name: str, value: Any) -> int:
        if not _is_int(value):
            _fail(owner, name, expected, value, TypeError)
        if int(value) < minimum:
            _fail(owner, name, expected, value)
        return int(value)

    return check


def positive_number() -> Checker:
    expected = "a float > 0"

    def check(owner: str, name: str, value: Any) -> float:
        if not _is_real(value):
            _fail(owner, name, expected, value, TypeError)
        if not (_is_finite_real(value) and float(value) > 0):
            _fail(owner, name, expected, value)
        return float(value)

    return check


def choice(options: Sequence[str]) -> Checker:
    expected = "one of " + ", ".join(repr(o) for o in options)

    def check(owner: str, name: str, value: Any) -> str:
        if not isinstance(value, str):
            _fail(owner, name, expected, value, TypeError)
        if value.lower() not in options:
            _fail(owner, name, expected, value)
        return value.lower()

    return check


def optional(inner: Checker) -> Checker:
    def check(owner: str, name: str, value: Any) -> Any:
        return None if value is None else inner(owner, name, value)

    return check


def pixels_range() -> Checker:
    expected = "None or a pair (lo, hi) of finite floats with lo < hi"

    def check(owner: str, name: str, value: Any) -> tuple[float, float] | None:
        if value is None:
            return None
        if not _is_pair(value):
            _fail(owner, name, expected, value, TypeError)
        lo, hi = value
        if not (_is_real(lo) and _is_real(hi)):
            _fail(owner, name, expected, value, TypeError)
        if not (_is_finite_real(lo) and _is_finite_real(hi) and float(lo) < float(hi)):
            _fail(owner, name, expected, value)
        return (float(lo), float(hi))

    return check


def fill_method() -> Checker:
    expected = (
        "one of " + ", ".join(repr(m) for m in FILL_METHODS) + ", a finite number, or a non-empty "
        "tuple of finite numbers (one per channel)"
    )

    def check(owner: str, name: str, value: Any) -> str | float | tuple[float, ...]:
        if isinstance(value, str):
            if value.lower() not in FILL_METHODS:
                _fail(owner, name, expected, value)
            return value.lower()
        if _is_real(value):
            if not _is_finite_real(value):
                _fail(owner, name, expected, value)
            return float(value)
        if isinstance(value, (tuple, list)):
            if len(value) == 0 or not all(_is_real(v) for v in value):
                _fail(owner, name, expected, value, TypeError if len(value) else ValueError)
            if not all(_is_finite_real(v) for v in value):
                _fail(owner, name, expected, value)
            return tuple(float(v) for v in value)
        _fail(owner, name, expected, value, TypeError)
        raise AssertionError

    return check


def grid_size() -> Checker:
    """Hide-and-Seek grids: ``n`` (n x n), ``(rows, cols)``, or a list of candidates of either form.

    Normalised to a tuple of ``(rows, cols)`` candidates, e.g. ``8 -> ((8, 8),)`` and
    ``[4, (8, 16)] -> ((4, 4), (8, 16))``. A list whose items are all pairs is read as candidates,
    and a tuple of pairs too, so the normalised form validates unchanged, also after a JSON round
    trip has turned its tuples into lists.
    """
    expected = (
        "a positive integer n (n x n cells), a tuple (rows, cols) of positive integers, "
        "or a non-empty list of such candidates"
    )

    def one(owner: str, name: str, value: Any, whole: Any) -> tuple[int, int]:
        if _is_int(value):
            if int(value) < 1:
                _fail(owner, name, expected, whole)
            return (int(value), int(value))
        if _is_pair(value) and all(_is_int(v) for v in value):
            rows, cols = int(value[0]), int(value[1])
            if rows < 1 or cols < 1:
                _fail(owner, name, expected, whole)
            return (rows, cols)
        _fail(owner, name, expected, whole, TypeError)
        raise AssertionError

    def check(owner: str, name: str, value: Any) -> tuple[tuple[int, int], ...]:
        nested = isinstance(value, tuple) and len(value) > 0 and all(isinstance(v, (tuple, list)) for v in value)
        if isinstance(value, list) or nested:
            if not value:
                _fail(owner, name, expected, value)
            return tuple(one(owner, name, v, value) for v in value)
        return (one(owner, name, value, value),)

    return check


def _inside(v: float, lo: float, hi: float, lo_open: bool, hi_open: bool) -> bool:
    if math.isnan(v):
        return False
    above = v > lo if lo_open else v >= lo
    below = v < hi if hi_open else v <= hi
    return above and below


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


# --------------------------------------------------------------------------------------------
# Parameter and strategy specifications.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One constructor parameter: its name, default, checker and one-line documentation."""

    name: str
    default: Any
    check: Checker
    doc: str


@dataclass(frozen=True)
class StrategySpec:
    """The framework-free definition of one strategy: its name, parameters and summary."""

    name: str
    params: tuple[Param, ...]
    summary: str
    mixes_labels: bool = False

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate(self, values: Mapping[str, Any], owner: str | None = None) -> dict[str, Any]:
        """Validate ``values`` (missing names take their defaults) and return normalised values.

        ``owner`` is the name used in error messages (defaults to the strategy's name; subclasses
        pass their own class name).
        """
        who = owner or self.name
        unknown = sorted(set(values) - set(self.param_names))
        if unknown:
            raise TypeError(
                f"{who}: unexpected parameter(s) {', '.join(unknown)}; expected {', '.join(self.param_names)}"
            )
        out: dict[str, Any] = {}
        for p in self.params:
            out[p.name] = p.check(who, p.name, values.get(p.name, p.default))
        return out


def num_selected(ratio: float, batch_size: int) -> int:
    """How many images of a batch are augmented when ``bernoulli_mix`` is False.

    ``round(ratio * batch_size)`` with halves rounded up (``0.5 * 3 -> 2``, ``0.5 * 5 -> 3``),
    unlike Python's banker's rounding, so that the count never depends on the parity of the batch.
    """
    return math.floor(ratio * batch_size + 0.5)


# Parameters shared by every strategy (the fraction control and value range of SPEC §3).
COMMON_PARAMS: tuple[Param, ...] = (
    Param(
        "augmentation_ratio",
        1.0,
        number_in(0.0, 1.0, lo_open=False, hi_open=False),
        "Fraction of the images of the batch that are augmented.",
    ),
    Param(
        "bernoulli_mix",
        False,
        boolean(),
        "False: exactly round(ratio * B) images at random positions; True: each image independently "
        "with probability ratio.",
    ),
    Param(
        "pixels_range",
        None,
        pixels_range(),
        "(lo, hi) value range of the images; None means (0, 1) for floats and (0, 255) for uint8.",
    ),
)

FILL_PARAM = Param("fill_method", "black", fill_method(), "How erased pixels are filled (SPEC §3).")

LABEL_PARAMS: tuple[Param, ...] = (
    Param(
        "num_classes",
        None,
        optional(integer_at_least(1)),
        "Number of classes; required when labels are class indices.",
    ),
    Param(
        "label_smoothing",
        0.0,
        number_in(0.0, 1.0, lo_open=False, hi_open=True),
        "Label smoothing in [0, 1) applied before mixing.",
    ),
)

_AREA_RANGE_DOC = "Patch area as a fraction of the image area: a float or a (lo, hi) range drawn uniformly."
_ASPECT_DOC = "Patch aspect ratio height / width: a number or a (lo, hi) range drawn log-uniformly."

RANDOM_CUTOUT = StrategySpec(
    "RandomCutout",
    (
        Param("patch_area", 0.1, fraction_or_range(), "Square area as a fraction of the image area (float or range)."),
        Param(
            "allow_partial",
            False,
            boolean(),
            "False: the square lies fully inside; True: its centre is uniform over the image and it is clipped.",
        ),
        FILL_PARAM,
        *COMMON_PARAMS,
    ),
    "Erase one square of a given area per image (DeVries & Taylor, 2017).",
)

RANDOM_ERASING = StrategySpec(
    "RandomErasing",
    (
        Param("patch_area", (0.05, 0.3), fraction_or_range(), _AREA_RANGE_DOC),
        Param("patch_aspect_ratio", (0.3, 3.0), positive_range(), _ASPECT_DOC),
        Param(
            "patch_count",
            1,
            count_range(1),
            "Number of rectangles per image (int or range); the drawn area is split between them.",
        ),
        FILL_PARAM,
        *COMMON_PARAMS,
    ),
    "Erase a rectangle of random area and aspect ratio per image (Zhong et al., 2017).",
)

RANDOM_HIDE_AND_SEEK = StrategySpec(
    "RandomHideAndSeek",
    (
        Param("grid_size", (8, 8), grid_size(), "Grid: n, (rows, cols), or a list of candidates drawn per image."),
        Param("erased_patches", (0, 5), count_range(0), "Number of cells erased per image (int or range)."),
        Param(
            "hide_prob",
            None,
            optional(number_in(0.0, 1.0, lo_open=True, hi_open=True)),
            "If set, each cell is hidden independently with this probability (erased_patches is ignored).",
        ),
        FILL_PARAM,
        *COMMON_PARAMS,
    ),
    "Split the image into a grid and hide random cells (Singh et al., 2018).",
)

RANDOM_GRID_MASK = StrategySpec(
    "RandomGridMask",
    (
        Param(
            "unit_length",
            (0.2, 0.4),
            fraction_or_range(allow_one=True),
            "Grid unit side as a fraction of min(H, W) (float in (0, 1] or range).",
        ),
        Param(
            "masked_ratio",
            0.5,
            fraction_or_range(),
            "Side of the masked square divided by the unit side (float or range).",
        ),
        Param(
            "rotation",
            0.0,
            number_in(0.0, 360.0, lo_open=False, hi_open=False),
            "Maximum rotation of the grid in degrees; the angle is uniform in [-rotation, rotation].",
        ),
        FILL_PARAM,
        *COMMON_PARAMS,
    ),
    "Mask a regular grid of squares with random unit size and offset (Chen et al., 2020).",
)

RANDOM_CUTMIX = StrategySpec(
    "RandomCutMix",
    (
        Param("alpha", 1.0, positive_number(), "Beta(alpha, alpha) parameter of the mixing ratio."),
        Param(
            "patch_area",
            None,
            optional(fraction_or_range()),
            "None: the paper's box of area 1 - lambda; a range: area drawn from Beta rescaled into it.",
        ),
        Param("patch_aspect_ratio", None, optional(positive_range()), _ASPECT_DOC),
        *LABEL_PARAMS,
        *COMMON_PARAMS,
    ),
    "Paste a box of a partner image and mix labels by pixel fraction (Yun et al., 2019).",
    mixes_labels=True,
)

RANDOM_MIXUP = StrategySpec(
    "RandomMixup",
    (
        Param("alpha", 1.0, positive_number(), "Beta(alpha, alpha) parameter of the mixing ratio."),
        *LABEL_PARAMS,
        *COMMON_PARAMS,
    ),
    "Blend each image with a partner image and mix labels likewise (Zhang et al., 2017).",
    mixes_labels=True,
)

RANDOM_CUTBLUR = StrategySpec(
    "RandomCutBlur",
    (
        Param("patch_area", (0.05, 0.3), fraction_or_range(), _AREA_RANGE_DOC),
        Param("patch_aspect_ratio", (0.3, 3.0), positive_range(), _ASPECT_DOC),
        Param(
            "blur_factor",
            0.1,
            fraction_or_range(),
            "Down-sampling factor of the low-resolution copy (float or range).",
        ),
        Param("resize_method", "bilinear", choice(RESIZE_METHODS), "Interpolation of the up-sampling."),
        *COMMON_PARAMS,
    ),
    "Replace a rectangle by a low-resolution copy of the same region (Yoo et al., 2020).",
)

RANDOM_CUT_THUMBNAIL = StrategySpec(
    "RandomCutThumbnail",
    (
        Param("thumbnail_area", 0.1, fraction_or_range(), "Thumbnail area as a fraction of the image (or range)."),
        Param("resize_method", "bilinear", choice(RESIZE_METHODS), "Interpolation of the down-sampling."),
        Param(
            "mix_images",
            False,
            boolean(),
            "True: paste the partner's thumbnail and mix labels by its pixel area.",
        ),
        *LABEL_PARAMS,
        *COMMON_PARAMS,
    ),
    "Paste a shrunken copy of the whole image at a random place (Xie et al., 2021).",
    mixes_labels=True,
)

RANDOM_CUTPASTE = StrategySpec(
    "RandomCutPaste",
    (
        Param("patch_area", (0.05, 0.3), fraction_or_range(), _AREA_RANGE_DOC),
        Param("patch_aspect_ratio", (0.3, 3.0), positive_range(), _ASPECT_DOC),
        Param(
            "color_jitter",
            0.0,
            number_in(0.0, 1.0, lo_open=False, hi_open=False),
            "Strength in [0, 1] of the brightness/contrast/saturation jitter of the pasted patch.",
        ),
        Param("return_labels", False, boolean(), "Also return int64 is-augmented labels."),
        *COMMON_PARAMS,
    ),
    "Cut a patch and paste it elsewhere in the same image (Li et al., 2021).",
)

RANDOM_CUTSWAP = StrategySpec(
    "RandomCutSwap",
    (
        Param("patch_area", (0.05, 0.3), fraction_or_range(), _AREA_RANGE_DOC),
        Param("patch_aspect_ratio", (0.3, 3.0), positive_range(), _ASPECT_DOC),
        Param("return_labels", False, boolean(), "Also return int64 is-augmented labels."),
        *COMMON_PARAMS,
    ),
    "Swap the contents of two non-overlapping patches of the same size (Qin et al., 2023).",
)

#: Every strategy, by class name.
SPECS: dict[str, StrategySpec] = {
    s.name: s
    for s in (
        RANDOM_CUTOUT,
        RANDOM_ERASING,
        RANDOM_HIDE_AND_SEEK,
        RANDOM_GRID_MASK,
        RANDOM_CUTMIX,
        RANDOM_MIXUP,
        RANDOM_CUTBLUR,
        RANDOM_CUT_THUMBNAIL,
        RANDOM_CUTPASTE,
        RANDOM_CUTSWAP,
    )
}
