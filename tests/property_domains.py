"""Framework-free hypothesis domains shared by the torch and Keras property tests and the soak test.

Per strategy (by class name): a hypothesis strategy of valid keyword arguments drawn from each
parameter's documented domain (SPEC §4), the common fraction-control options, the image layouts
the property tests draw, and the catalogue of bad values used to probe validation. Nothing here
imports torch, keras or tensorflow: both frameworks share these definitions so that they are
tested against the same domains.
"""

from __future__ import annotations

import math
import random
from typing import Any

from hypothesis import strategies as st

from maskmix.params import FILL_METHODS, RESIZE_METHODS, SPECS

__all__ = [
    "BAD_VALUES",
    "BATCH_SIZES",
    "CHANNELS",
    "COMMON",
    "DOMAINS",
    "DRAW_EVERYTHING",
    "MIXING",
    "NAMES",
    "SIZES",
    "is_mixing",
    "random_kwargs",
    "spec_errors",
]

# --------------------------------------------------------------------------------------------
# Valid parameter domains.
# --------------------------------------------------------------------------------------------


def fraction_or_range(lo: float = 0.01, hi: float = 0.95) -> st.SearchStrategy:
    value = st.floats(lo, hi)
    return st.one_of(value, st.tuples(value, value).map(lambda p: tuple(sorted(p))))


def aspect_or_range() -> st.SearchStrategy:
    value = st.floats(0.1, 10.0)
    return st.one_of(value, st.tuples(value, value).map(lambda p: tuple(sorted(p))))


def count_or_range(lo: int, hi: int) -> st.SearchStrategy:
    value = st.integers(lo, hi)
    return st.one_of(value, st.tuples(value, value).map(lambda p: tuple(sorted(p))))


FILLS = st.one_of(
    st.sampled_from(FILL_METHODS),
    st.floats(-1.0, 2.0),
    # One value per channel only fits images with that many channels: a 1-tuple always fits.
    st.tuples(st.floats(-1.0, 2.0)),
)
RESIZES = st.sampled_from(RESIZE_METHODS)

#: Per strategy class name: a hypothesis strategy of valid keyword arguments.
DOMAINS: dict[str, st.SearchStrategy] = {
    "RandomCutout": st.fixed_dictionaries(
        {"patch_area": fraction_or_range(), "allow_partial": st.booleans(), "fill_method": FILLS}),
    "RandomErasing": st.fixed_dictionaries(
        {"patch_area": fraction_or_range(), "patch_aspect_ratio": aspect_or_range(),
         "patch_count": count_or_range(1, 4), "fill_method": FILLS}),
    "RandomHideAndSeek": st.fixed_dictionaries(
        {"grid_size": st.one_of(st.integers(1, 9), st.tuples(st.integers(1, 9), st.integers(1, 9)),
                                st.lists(st.integers(1, 9), min_size=1, max_size=3)),
         "erased_patches": count_or_range(0, 6),
         "hide_prob": st.one_of(st.none(), st.floats(0.01, 0.99)),
         "fill_method": FILLS}),
    "RandomGridMask": st.fixed_dictionaries(
        {"unit_length": fraction_or_range(0.05, 1.0), "masked_ratio": st.floats(0.05, 0.95),
         "rotation": st.floats(0, 360), "fill_method": FILLS}),
    "RandomCutMix": st.one_of(
        st.fixed_dictionaries({"alpha": st.floats(0.05, 5.0)}),
        st.fixed_dictionaries({"alpha": st.floats(0.05, 5.0), "patch_area": fraction_or_range(),
                               "patch_aspect_ratio": aspect_or_range()})),
    "RandomMixup": st.fixed_dictionaries({"alpha": st.floats(0.05, 5.0)}),
    "RandomCutBlur": st.fixed_dictionaries(
        {"patch_area": fraction_or_range(), "patch_aspect_ratio": aspect_or_range(),
         "blur_factor": fraction_or_range(0.02, 0.98), "resize_method": RESIZES}),
    "RandomCutThumbnail": st.fixed_dictionaries(
        {"thumbnail_area": fraction_or_range(), "resize_method": RESIZES, "mix_images": st.booleans()}),
    "RandomCutPaste": st.fixed_dictionaries(
        {"patch_area": fraction_or_range(), "patch_aspect_ratio": aspect_or_range(),
         "color_jitter": st.one_of(st.just(0.0), st.floats(0.0, 1.0)), "return_labels": st.booleans()}),
    "RandomCutSwap": st.fixed_dictionaries(
        {"patch_area": fraction_or_range(), "patch_aspect_ratio": aspect_or_range(),
         "return_labels": st.booleans()}),
}
NAMES: tuple[str, ...] = tuple(DOMAINS)

#: The fraction control and value range every strategy takes.
COMMON = st.fixed_dictionaries({
    "augmentation_ratio": st.floats(0.0, 1.0),
    "bernoulli_mix": st.booleans(),
    "pixels_range": st.one_of(
        st.none(),
        st.tuples(st.floats(-3.0, 0.0), st.floats(0.5, 300.0)),
    ),
})

#: Strategies that always mix images and labels (Cut-Thumbnail does with ``mix_images=True``).
MIXING: frozenset[str] = frozenset({"RandomCutMix", "RandomMixup"})


def is_mixing(name: str, kwargs: dict[str, Any]) -> bool:
    """Whether ``name`` built with ``kwargs`` takes ``(images, labels)`` and needs a batch."""
    return name in MIXING or bool(kwargs.get("mix_images", False))


#: Image sizes ``(H, W)``: 1x1, 1xN, Nx1, 2x2, H != W, odd squares.
SIZES: tuple[tuple[int, int], ...] = ((1, 1), (1, 7), (6, 1), (2, 2), (5, 9), (16, 12), (13, 13))
#: Batch sizes: empty, one image, even and odd batches.
BATCH_SIZES: tuple[int, ...] = (0, 1, 2, 3, 5)
CHANNELS: tuple[int, ...] = (1, 2, 3, 4)


def random_kwargs(name: str, rng: random.Random) -> dict[str, Any]:
    """Valid keyword arguments for ``name`` drawn with a plain ``random.Random`` (the soak test).

    The same domains as :data:`DOMAINS` (hypothesis' ``example()`` is for interactive use only and
    too slow for thousands of draws): fractions and ranges in ``[0.01, 0.95]``, log-uniform
    aspect ratios in ``[0.1, 10]``, every fill and resize method, the common options.
    """
    def frac(lo: float = 0.01, hi: float = 0.95) -> Any:
        a, b = rng.uniform(lo, hi), rng.uniform(lo, hi)
        return rng.choice([a, (min(a, b), max(a, b))])

    def aspect() -> Any:
        a, b = math.exp(rng.uniform(math.log(0.1), math.log(10))), math.exp(rng.uniform(math.log(0.1), math.log(10)))
        return rng.choice([a, (min(a, b), max(a, b))])

    def count(lo: int, hi: int) -> Any:
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        return rng.choice([a, (min(a, b), max(a, b))])

    def fill() -> Any:
        return rng.choice([rng.choice(FILL_METHODS), rng.uniform(-1, 2), (rng.uniform(-1, 2),)])

    makers = {
        "RandomCutout": lambda: {"patch_area": frac(), "allow_partial": rng.random() < 0.5, "fill_method": fill()},
        "RandomErasing": lambda: {"patch_area": frac(), "patch_aspect_ratio": aspect(),
                                  "patch_count": count(1, 4), "fill_method": fill()},
        "RandomHideAndSeek": lambda: {
            "grid_size": rng.choice([rng.randint(1, 9), (rng.randint(1, 9), rng.randint(1, 9)),
                                     [rng.randint(1, 9) for _ in range(rng.randint(1, 3))]]),
            "erased_patches": count(0, 6),
            "hide_prob": rng.choice([None, rng.uniform(0.01, 0.99)]),
            "fill_method": fill()},
        "RandomGridMask": lambda: {"unit_length": frac(0.05, 1.0), "masked_ratio": rng.uniform(0.05, 0.95),
                                   "rotation": rng.choice([0.0, rng.uniform(0, 360)]), "fill_method": fill()},
        "RandomCutMix": lambda: {"alpha": rng.uniform(0.05, 5.0)} | (
            {"patch_area": frac(), "patch_aspect_ratio": aspect()} if rng.random() < 0.5 else {}),
        "RandomMixup": lambda: {"alpha": rng.uniform(0.05, 5.0)},
        "RandomCutBlur": lambda: {"patch_area": frac(), "patch_aspect_ratio": aspect(),
                                  "blur_factor": frac(0.02, 0.98), "resize_method": rng.choice(RESIZE_METHODS)},
        "RandomCutThumbnail": lambda: {"thumbnail_area": frac(), "resize_method": rng.choice(RESIZE_METHODS),
                                       "mix_images": rng.random() < 0.5},
        "RandomCutPaste": lambda: {"patch_area": frac(), "patch_aspect_ratio": aspect(),
                                   "color_jitter": rng.choice([0.0, rng.uniform(0, 1)]),
                                   "return_labels": rng.random() < 0.5},
        "RandomCutSwap": lambda: {"patch_area": frac(), "patch_aspect_ratio": aspect(),
                                  "return_labels": rng.random() < 0.5},
    }
    kwargs = makers[name]()
    kwargs["augmentation_ratio"] = rng.choice([1.0, rng.random()])
    kwargs["bernoulli_mix"] = rng.random() < 0.5
    kwargs["pixels_range"] = rng.choice([None, (rng.uniform(-3, 0), rng.uniform(0.5, 300))])
    return kwargs


# --------------------------------------------------------------------------------------------
# Values from outside the domains.
# --------------------------------------------------------------------------------------------

#: Bad values tried on every parameter of every strategy: out of range, NaN, inf, bools, wrong
#: arity, wrong types, unknown strings. Not every value is bad for every parameter (1 is a fine
#: count); :func:`spec_errors` keeps those the framework-free spec refuses.
BAD_VALUES: list[Any] = [
    math.nan, math.inf, -math.inf, -1, -0.5, 0, 0.0, 1, 1.0, 1.5, 2, 1000, True, False, None, "x", "",
    (0.5, 0.2), (0.1, 0.2, 0.3), (0.2,), (), [0.1], [0.3, math.nan], (True, 0.5), (0, 0), (-1, 2),
    {"a": 1}, bytes(2), (math.inf, 1.0), (0.1, "b"), 1 + 2j,
]


def spec_errors() -> list[tuple[str, str, Any, type, str]]:
    """``(class name, parameter, bad value, error type, message)`` for every value a spec refuses."""
    rows = []
    for class_name in NAMES:
        spec = SPECS[class_name]
        for param in spec.params:
            for value in BAD_VALUES:
                try:
                    spec.validate({param.name: value}, owner=class_name)
                except (ValueError, TypeError) as error:
                    rows.append((class_name, param.name, value, type(error), str(error)))
    return rows


#: Per strategy: keyword arguments under which one call consumes every kind of random draw it has
#: (fills, counts, ranges, partners, jitter); the determinism tests of both frameworks use them.
DRAW_EVERYTHING: dict[str, dict[str, Any]] = {
    "RandomCutout": {"fill_method": "noise", "augmentation_ratio": 0.7},
    "RandomErasing": {"patch_count": (1, 3), "fill_method": "normal", "bernoulli_mix": True, "augmentation_ratio": 0.6},
    "RandomHideAndSeek": {"grid_size": [2, (3, 4)], "fill_method": "random"},
    "RandomGridMask": {"rotation": 90.0, "fill_method": "normal_per_patch"},
    "RandomCutMix": {"num_classes": 3, "label_smoothing": 0.1},
    "RandomMixup": {"num_classes": 3, "alpha": 0.4},
    "RandomCutBlur": {"blur_factor": (0.1, 0.5), "resize_method": "bicubic"},
    "RandomCutThumbnail": {"thumbnail_area": (0.1, 0.5), "mix_images": True, "num_classes": 3},
    "RandomCutPaste": {"color_jitter": 0.3, "return_labels": True},
    "RandomCutSwap": {"return_labels": True},
}
