"""Framework-free hypothesis domains shared by the torch and Keras property tests and the soak test.

Per strategy (by class name): a hypothesis strategy of valid keyword arguments generated from the
domains its parameters declare in the registry (:mod:`maskmix.domains`), the common
fraction-control options, the image layouts
the property tests draw, and the catalogue of bad values used to probe validation. Nothing here
imports torch, keras or tensorflow: both frameworks share these definitions so that they are
tested against the same domains.
"""

from __future__ import annotations

import math
import random
from typing import Any

from hypothesis import strategies as st

from maskmix import registry
from maskmix.params import COMMON_PARAMS, SPECS
from maskmix.registry import Param, StrategySpec

__all__ = [
    "BAD_VALUES",
    "BATCH_SIZES",
    "CHANNELS",
    "COMMON",
    "CONFIGS",
    "DOMAINS",
    "DRAW_EVERYTHING",
    "NAMES",
    "SIZES",
    "is_mixing",
    "names",
    "random_kwargs",
    "spec_errors",
]

# --------------------------------------------------------------------------------------------
# Valid parameter domains: generated from the domains each parameter declares in the registry.
# --------------------------------------------------------------------------------------------

_COMMON_NAMES = frozenset(p.name for p in COMMON_PARAMS)


def _drawn(spec: StrategySpec) -> tuple[Param, ...]:
    """The strategy's own parameters that the tests draw (those with a domain)."""
    return tuple(p for p in spec.params if p.domain is not None and p.name not in _COMMON_NAMES)


#: Per strategy class name: a hypothesis strategy of valid keyword arguments.
DOMAINS: dict[str, st.SearchStrategy] = {
    spec.name: st.fixed_dictionaries({p.name: p.domain.strategy(st) for p in _drawn(spec)})
    for spec in registry.specs()
}
NAMES: tuple[str, ...] = tuple(DOMAINS)

#: The fraction control and value range every strategy takes.
COMMON = st.fixed_dictionaries({p.name: p.domain.strategy(st) for p in COMMON_PARAMS})


def consistent(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with defaults where a drawn value does not fit the other draws.

    Each parameter is drawn from its own domain, but a partner law is refused where no image is
    mixed (Cut-Thumbnail without ``mix_images``) and with ``sampling="pair"`` unless it is the
    pair's other image, and a parameter that acts only with a switch is refused with the switch
    off (``switched``: Cut-Thumbnail's label options, CutPaste's ``three_way_labels``) or where
    another parameter replaces it (``superseded``); see ``maskmix.registry.StrategySpec.validate``.
    """
    spec = registry.get(name)
    defaults = spec.defaults()
    kwargs = {**kwargs, **{param: defaults[param] for param, switch in spec.switched.items()
                           if param in kwargs and not kwargs.get(switch, defaults[switch])}}
    # A parameter another one replaces (``superseded``: Cutout's patch_area beside a patch_side) is
    # refused unless at its default.
    kwargs = {**kwargs, **{param: defaults[param] for param in spec.superseded
                           if param in kwargs and spec.replaced_by(param, kwargs) is not None}}
    try:
        spec.validate(kwargs)
    except ValueError:
        if kwargs.get("partner", "other") == "other":
            raise
        return {**kwargs, "partner": "other"}
    return kwargs


#: Per strategy class name: a hypothesis strategy of valid keyword arguments, its own parameters
#: and the common options together.
CONFIGS: dict[str, st.SearchStrategy] = {
    name: st.tuples(own, COMMON).map(lambda drawn, name=name: consistent(name, drawn[0] | drawn[1]))
    for name, own in DOMAINS.items()
}


def names(framework: str) -> tuple[str, ...]:
    """The strategies ``framework`` implements, in registry order."""
    return tuple(spec.name for spec in registry.specs(framework))


def is_mixing(name: str, kwargs: dict[str, Any]) -> bool:
    """Whether ``name`` built with ``kwargs`` takes ``(images, labels)`` and needs a batch."""
    return registry.get(name).mixes_images(kwargs)


#: Image sizes ``(H, W)``: 1x1, 1xN, Nx1, 2x2, H != W, odd squares.
SIZES: tuple[tuple[int, int], ...] = ((1, 1), (1, 7), (6, 1), (2, 2), (5, 9), (16, 12), (13, 13))
#: Batch sizes: empty, one image, even and odd batches.
BATCH_SIZES: tuple[int, ...] = (0, 1, 2, 3, 5)
CHANNELS: tuple[int, ...] = (1, 2, 3, 4)


def random_kwargs(name: str, rng: random.Random) -> dict[str, Any]:
    """Valid keyword arguments for ``name`` drawn with a plain ``random.Random`` (the soak test).

    The same domains as :data:`DOMAINS` (hypothesis' ``example()`` is for interactive use only and
    too slow for thousands of draws), the common options included.
    """
    spec = registry.get(name)
    kwargs = {p.name: p.domain.draw(rng) for p in _drawn(spec)}
    kwargs.update({p.name: p.domain.draw(rng) for p in COMMON_PARAMS})
    return consistent(name, kwargs)


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
DRAW_EVERYTHING: dict[str, dict[str, Any]] = {spec.name: dict(spec.draw_everything) for spec in registry.specs()}
