"""Framework-free value checks: each takes ``(owner, name, value)`` and returns the normalised
value or raises a ``ValueError``/``TypeError`` whose message names the owner and the parameter.

The parameter specifications (:mod:`maskmix.params`) and the integrations' options
(:mod:`maskmix.integration_options`) are built from these checks, so that every part of the
library words a refusal the same way. Standard library only.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

__all__ = [
    "CUTMIX_BOX_ROUNDINGS",
    "FILL_METHODS",
    "LARGEST_FINITE",
    "RESIZE_METHODS",
    "ROW_SUM_TOLERANCE",
    "THUMBNAIL_RESIZE_METHODS",
    "UINT8_UNIT_FILLS",
    "Checker",
    "boolean",
    "choice",
    "count_range",
    "fill_method",
    "float_fill_refusal",
    "fraction_or_range",
    "fraction_pair",
    "grid_size",
    "integer",
    "integer_at_least",
    "is_real_number",
    "multi_hot_smoothing_message",
    "normal_fraction",
    "number_in",
    "optional",
    "pixel_range_up_to_image",
    "pixel_sizes",
    "pixels_range",
    "positive_range",
    "uint8_refusal",
]

#: How far from 1 the sum of a one-hot/soft label row may be (bfloat16 rows round their sums by
#: about 1e-3): a row further off holds several labels (multi-hot) or none.
ROW_SUM_TOLERANCE = 1e-2


def multi_hot_smoothing_message(owner: str, smoothing: float) -> str:
    """The error for label rows that do not sum to 1 (multi-hot labels) given to ``label_smoothing``,
    in both frameworks."""
    return (f"{owner}: label_smoothing={smoothing} smooths one-hot/soft rows (each summing to 1) towards 1/K; got "
            "rows that do not sum to 1 (multi-hot labels?). Multi-label targets are smoothed towards 0.5 (e.g. "
            "keras.losses.BinaryCrossentropy(label_smoothing=...)): set label_smoothing=0 here and smooth in the loss")


#: Fill methods understood by every masking strategy (design §Conventions, fills).
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

#: The fills drawn in the units of a standard normal, meaningless on 0..255 integer pixels.
UINT8_UNIT_FILLS: tuple[str, ...] = ("normal", "normal_per_patch")

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


def is_real_number(value: Any) -> bool:
    """Whether ``value`` is a real number as the checkers take one: Python or NumPy, bools excluded."""
    return _is_real(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not _is_bool(value)


#: The largest count or size in pixels a parameter takes (int32's maximum): the backends index
#: with 32- or 64-bit integers, and larger values failed inside torch or TensorFlow (an overflow
#: or an allocation of exabytes) with messages that named no transform and no parameter.
MAX_INTEGER = 2**31 - 1


def _bounded(checker: Checker) -> Checker:
    """``checker``, then every integer of its normalised value at most :data:`MAX_INTEGER`."""

    def largest(value: Any) -> int:
        if isinstance(value, (tuple, list)):
            return max((largest(v) for v in value), default=0)
        return int(value) if isinstance(value, int) else 0

    def check(owner: str, name: str, value: Any) -> Any:
        normalised = checker(owner, name, value)
        if largest(normalised) > MAX_INTEGER:
            _fail(owner, name, f"at most {MAX_INTEGER} (counts and sizes in pixels are 32-bit integers)", value)
        return normalised

    return check


def _is_finite_real(value: Any) -> bool:
    return _is_real(value) and math.isfinite(float(value))


def _is_pair(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2


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

    return _real_or_range(expected, lambda v: _inside(v, 0.0, 1.0, True, not allow_one))


def positive_range() -> Checker:
    """A number > 0 (fixed) or an ordered pair ``(lo, hi)`` with ``0 < lo <= hi``."""
    return _real_or_range("a float > 0 or a pair (lo, hi) with 0 < lo <= hi", lambda v: v > 0)


def _real_or_range(expected: str, inside: Callable[[float], bool]) -> Checker:
    """A finite real for which ``inside`` holds, or an ordered pair of them; normalised to ``(lo, hi)``."""
    return _value_or_range(expected, _is_real, lambda v: _is_finite_real(v) and inside(float(v)), float, ValueError)


def count_range(minimum: int) -> Checker:
    """An integer >= minimum or an ordered pair of them; normalised to ``(lo, hi)``."""
    word = "positive integer" if minimum == 1 else f"integer >= {minimum}"
    expected = f"a {word} or a pair (lo, hi) of integers with {minimum} <= lo <= hi"
    return _bounded(_value_or_range(expected, _is_int, lambda v: int(v) >= minimum, int, TypeError))


def _value_or_range(expected: str, of_kind: Callable[[Any], bool], ok: Callable[[Any], bool],
                    convert: Callable[[Any], Any], wrong_length: type[Exception]) -> Checker:
    """One value of a kind (``of_kind``) for which ``ok`` holds, or an ordered pair of them;
    normalised to ``(lo, hi)`` by ``convert``. A tuple or list that is not a pair raises
    ``wrong_length``; a value of another kind, a ``TypeError``."""

    def check(owner: str, name: str, value: Any) -> tuple[Any, Any]:
        if of_kind(value):
            if not ok(value):
                _fail(owner, name, expected, value)
            return (convert(value), convert(value))
        if _is_pair(value):
            lo, hi = value
            if not (of_kind(lo) and of_kind(hi)):
                _fail(owner, name, expected, value, TypeError)
            if not (ok(lo) and ok(hi) and convert(lo) <= convert(hi)):
                _fail(owner, name, expected, value)
            return (convert(lo), convert(hi))
        _fail(owner, name, expected, value, wrong_length if isinstance(value, (tuple, list)) else TypeError)
        raise AssertionError  # unreachable, keeps type checkers happy

    return check


def integer() -> Checker:
    expected = "an integer"

    def check(owner: str, name: str, value: Any) -> int:
        if not _is_int(value):
            _fail(owner, name, expected, value, TypeError)
        return int(value)

    return check


def integer_at_least(minimum: int) -> Checker:
    expected = f"an integer >= {minimum}"

    def check(owner: str, name: str, value: Any) -> int:
        if not _is_int(value):
            _fail(owner, name, expected, value, TypeError)
        if int(value) < minimum:
            _fail(owner, name, expected, value)
        return int(value)

    return _bounded(check)


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

    return _bounded(check)


def _inside(v: float, lo: float, hi: float, lo_open: bool, hi_open: bool) -> bool:
    if math.isnan(v):
        return False
    above = v > lo if lo_open else v >= lo
    below = v < hi if hi_open else v <= hi
    return above and below


def _fmt(x: float) -> str:
    # Large bounds read as 1e+30, not as their 31 integer digits.
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else repr(x)


def pixel_sizes() -> Checker:
    """Sizes in pixels, one drawn per image: an integer >= 0 or a non-empty list/tuple of them.

    Normalised to a tuple of ints, e.g. ``16 -> (16,)`` and ``[0, 16, 32] -> (0, 16, 32)``
    (Hide-and-Seek's cell sides, where 0 means "hide nothing").
    """
    expected = "an integer >= 0 or a non-empty list of integers >= 0"

    def check(owner: str, name: str, value: Any) -> tuple[int, ...]:
        items = list(value) if isinstance(value, (tuple, list)) else [value]
        if not items or not all(_is_int(v) for v in items):
            _fail(owner, name, expected, value, TypeError if items else ValueError)
        if any(int(v) < 0 for v in items):
            _fail(owner, name, expected, value)
        return tuple(int(v) for v in items)

    return _bounded(check)


def pixel_range_up_to_image(minimum: int) -> Checker:
    """A pair ``(lo, hi)`` of integers ``minimum <= lo <= hi``, or ``(lo, None)`` (no upper bound
    but the image's); an integer ``n`` is ``(n, n)``. Normalised to ``(lo, hi)``."""
    expected = f"an integer >= {minimum} or a pair (lo, hi) of integers with {minimum} <= lo <= hi, hi may be None"

    def check(owner: str, name: str, value: Any) -> tuple[int, int | None]:
        if _is_int(value):
            if int(value) < minimum:
                _fail(owner, name, expected, value)
            return (int(value), int(value))
        if not _is_pair(value):
            _fail(owner, name, expected, value, ValueError if isinstance(value, (tuple, list)) else TypeError)
        lo, hi = value
        if not (_is_int(lo) and (hi is None or _is_int(hi))):
            _fail(owner, name, expected, value, TypeError)
        if int(lo) < minimum or (hi is not None and int(hi) < int(lo)):
            _fail(owner, name, expected, value)
        return (int(lo), None if hi is None else int(hi))

    return _bounded(check)


# --------------------------------------------------------------------------------------------
# Paper presets (issue 18): the mixing strategies' sampling options.
# --------------------------------------------------------------------------------------------

#: Cut-Thumbnail's resize methods: :data:`RESIZE_METHODS` and ``"nearest_legacy"``, the default
#: ``mode="nearest"`` of ``torch.nn.functional.interpolate`` that the paper's code calls (source
#: pixel ``floor(i * n_in / n_out)``, not the pixel-centred ``nearest-exact`` of ``"nearest"``).
THUMBNAIL_RESIZE_METHODS: tuple[str, ...] = (*RESIZE_METHODS, "nearest_legacy")

#: How CutMix rounds the paper's box (see :class:`maskmix.torch.RandomCutMix`).
CUTMIX_BOX_ROUNDINGS: tuple[str, ...] = ("round", "truncate")


def normal_fraction() -> Checker:
    """A pair ``(mean, std)`` of a normal law of fractions: ``0 < mean <= 1`` and ``std >= 0``,
    both finite; normalised to a tuple of floats."""
    expected = "a pair (mean, std) with 0 < mean <= 1 and std >= 0"

    def check(owner: str, name: str, value: Any) -> tuple[float, float]:
        if not _is_pair(value):
            _fail(owner, name, expected, value, ValueError if isinstance(value, (tuple, list)) else TypeError)
        mean, std = value
        if not (_is_real(mean) and _is_real(std)):
            _fail(owner, name, expected, value, TypeError)
        if not (_is_finite_real(mean) and _is_finite_real(std) and 0.0 < float(mean) <= 1.0 and float(std) >= 0.0):
            _fail(owner, name, expected, value)
        return (float(mean), float(std))

    return check


def fraction_pair() -> Checker:
    """An ordered pair ``(lo, hi)`` of fractions with ``0 <= lo < hi <= 1`` (timm's
    ``cutmix_minmax``); normalised to a tuple of floats."""
    expected = "a pair (lo, hi) with 0 <= lo < hi <= 1"

    def check(owner: str, name: str, value: Any) -> tuple[float, float]:
        if not _is_pair(value):
            _fail(owner, name, expected, value, ValueError if isinstance(value, (tuple, list)) else TypeError)
        lo, hi = value
        if not (_is_real(lo) and _is_real(hi)):
            _fail(owner, name, expected, value, TypeError)
        if not (_is_finite_real(lo) and _is_finite_real(hi) and 0.0 <= float(lo) < float(hi) <= 1.0):
            _fail(owner, name, expected, value)
        return (float(lo), float(hi))

    return check


#: The largest finite value of each floating image dtype a fill could overflow (float64 holds
#: every finite Python float).
LARGEST_FINITE: Mapping[str, float] = MappingProxyType({
    "float16": 65504.0, "bfloat16": 3.3895313892515355e38, "float32": 3.4028234663852886e38,
})


#: The largest magnitude each fill that reads pixels_range writes, from the range's ends.
_RANGE_FILLS: Mapping[str, Callable[[float, float], float]] = MappingProxyType({
    "black": lambda lo, hi: lo,
    "white": lambda lo, hi: hi,
    "gray": lambda lo, hi: (lo + hi) / 2,
    "random": lambda lo, hi: max(abs(lo), abs(hi)),
    "noise": lambda lo, hi: max(abs(lo), abs(hi)),
})


def float_fill_refusal(owner: str, dtype: str, pixels_range: tuple[float, float] | None, fill_method: Any, *,
                       range_name: str = "pixels_range") -> str | None:
    """Why float images of ``dtype`` cannot be filled as these options say, or None: a constant
    fill value (``fill_method`` a number or one per channel) or a ``pixels_range`` end (the fills
    black, white, gray, random and noise take theirs from it) beyond the dtype's largest finite
    value would be written as inf, silently (``fill_method=1e5`` on float16 images). Fills that do
    not reach the range's ends (``zero``, ``normal``, a black fill of ``(0, 65535)``) pass."""
    largest = LARGEST_FINITE.get(dtype)
    if largest is None:
        return None
    if pixels_range is not None and isinstance(fill_method, str) and fill_method in _RANGE_FILLS:
        reached = abs(_RANGE_FILLS[fill_method](*pixels_range))  # only the value the fill writes counts
        if reached > largest:
            return (f"{owner}: {range_name} {pixels_range!r} gives fill_method {fill_method!r} values beyond what "
                    f"{dtype} images hold (largest finite value {largest:g}): they would be inf; give a range "
                    "within it, or convert the images")
    values = fill_method if isinstance(fill_method, tuple) else (fill_method,)
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers and max(abs(v) for v in numbers) > largest:
        return (f"{owner}: fill_method {fill_method!r} exceeds what {dtype} images hold (largest finite value "
                f"{largest:g}): it would be written as inf; give a value within it, or convert the images")
    return None


def uint8_refusal(owner: str, pixels_range: tuple[float, float] | None, fill_method: Any, *,
                  range_name: str = "pixels_range") -> str | None:
    """Why uint8 images cannot be transformed with these options, or None (checked at call time,
    when the images' dtype is known).

    A ``pixels_range`` whose ends are not whole numbers in ``[0, 255]`` (a normalised range kept
    for uint8 images) would have its fills saturated and rounded to a few levels; a standard-normal
    fill (``"normal"``, ``"normal_per_patch"``, timm's per-pixel mode, which timm refuses on uint8
    too) means nothing in units of 0..255 levels: it would round to 0, 1 or 2.
    """
    if pixels_range is not None:
        lo, hi = pixels_range
        if not (0 <= lo < hi <= 255 and float(lo).is_integer() and float(hi).is_integer()):
            return (f"{owner}: {range_name} {pixels_range!r} cannot describe uint8 images, whose values are the "
                    "integers 0..255: give whole numbers in [0, 255] (or None), or convert the images to float")
    if isinstance(fill_method, str) and fill_method in UINT8_UNIT_FILLS:
        return (f"{owner}: fill_method {fill_method!r} draws standard-normal values, which uint8 images cannot hold "
                "(they would round to 0, 1 or 2); use 'noise' or 'random', or convert the images to float and "
                "normalise them first")
    return None
