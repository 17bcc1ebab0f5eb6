"""Value domains of strategy parameters, as data: what the tests draw valid configurations from.

Every :class:`~maskmix.registry.Param` may carry a :class:`Domain`: the part of its valid values
that the property tests, the soak test and the contract batteries explore (fractions in
``[0.01, 0.95]``, aspect ratios in ``[0.1, 10]`` drawn log-uniformly, small counts...). A domain is
declared once, with the parameter, and read two ways:

* :meth:`Domain.draw` draws a value with a standard-library ``random.Random`` (fast enough for the
  thousands of draws of a soak run);
* :meth:`Domain.strategy` builds the equivalent `hypothesis <https://hypothesis.works>`_ search
  strategy from the ``hypothesis.strategies`` module it is given (so this package never imports
  hypothesis).

Both readings cover the same values with the same structure, so a strategy added to the registry
is explored by every test without a domain written twice.

Example:
    >>> import random
    >>> from maskmix.domains import OrRange, Uniform
    >>> domain = OrRange(Uniform(0.1, 0.5))
    >>> value = domain.draw(random.Random(0))
    >>> isinstance(value, float) or (isinstance(value, tuple) and value[0] <= value[1])
    True

Standard library only.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Booleans",
    "Choice",
    "Domain",
    "Integers",
    "Just",
    "ListOf",
    "LogUniform",
    "OneOf",
    "OrRange",
    "TupleOf",
    "Uniform",
]


class Domain:
    """A set of valid parameter values that tests draw from (see the module docstring)."""

    def draw(self, rng: random.Random) -> Any:
        """One value, drawn with ``rng``."""
        raise NotImplementedError

    def strategy(self, st: Any) -> Any:
        """The hypothesis search strategy of the same values; ``st`` is ``hypothesis.strategies``."""
        raise NotImplementedError


@dataclass(frozen=True)
class Uniform(Domain):
    """A float uniform in ``[lo, hi]``."""

    lo: float
    hi: float

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(self.lo, self.hi)

    def strategy(self, st: Any) -> Any:
        return st.floats(self.lo, self.hi)


@dataclass(frozen=True)
class LogUniform(Domain):
    """A positive float whose logarithm is uniform in ``[log lo, log hi]`` (aspect ratios)."""

    lo: float
    hi: float

    def draw(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.lo), math.log(self.hi)))

    def strategy(self, st: Any) -> Any:
        return st.floats(math.log(self.lo), math.log(self.hi)).map(math.exp)


@dataclass(frozen=True)
class Integers(Domain):
    """An integer in ``[lo, hi]``."""

    lo: int
    hi: int

    def draw(self, rng: random.Random) -> int:
        return rng.randint(self.lo, self.hi)

    def strategy(self, st: Any) -> Any:
        return st.integers(self.lo, self.hi)


@dataclass(frozen=True)
class Choice(Domain):
    """One of a few values."""

    options: tuple[Any, ...]

    def draw(self, rng: random.Random) -> Any:
        return rng.choice(self.options)

    def strategy(self, st: Any) -> Any:
        return st.sampled_from(self.options)


@dataclass(frozen=True)
class Booleans(Domain):
    """``False`` or ``True``."""

    def draw(self, rng: random.Random) -> bool:
        return rng.random() < 0.5

    def strategy(self, st: Any) -> Any:
        return st.booleans()


@dataclass(frozen=True)
class Just(Domain):
    """Always the same value (e.g. ``None`` as one branch of a :class:`OneOf`)."""

    value: Any

    def draw(self, rng: random.Random) -> Any:
        return self.value

    def strategy(self, st: Any) -> Any:
        return st.just(self.value)


@dataclass(frozen=True)
class OneOf(Domain):
    """A value of one of the given domains, each branch equally likely."""

    options: tuple[Domain, ...]

    def draw(self, rng: random.Random) -> Any:
        return rng.choice(self.options).draw(rng)

    def strategy(self, st: Any) -> Any:
        return st.one_of(*(option.strategy(st) for option in self.options))


@dataclass(frozen=True)
class OrRange(Domain):
    """A single value of ``inner`` or an ordered pair ``(lo, hi)`` of two of its values."""

    inner: Domain

    def draw(self, rng: random.Random) -> Any:
        a, b = self.inner.draw(rng), self.inner.draw(rng)
        return rng.choice([a, (min(a, b), max(a, b))])

    def strategy(self, st: Any) -> Any:
        value = self.inner.strategy(st)
        return st.one_of(value, st.tuples(value, value).map(lambda pair: tuple(sorted(pair))))


@dataclass(frozen=True)
class TupleOf(Domain):
    """A tuple with one value of each item domain."""

    items: tuple[Domain, ...]

    def draw(self, rng: random.Random) -> tuple[Any, ...]:
        return tuple(item.draw(rng) for item in self.items)

    def strategy(self, st: Any) -> Any:
        return st.tuples(*(item.strategy(st) for item in self.items))


@dataclass(frozen=True)
class ListOf(Domain):
    """A list of ``min_size`` to ``max_size`` values of ``inner``."""

    inner: Domain
    min_size: int
    max_size: int

    def draw(self, rng: random.Random) -> list[Any]:
        return [self.inner.draw(rng) for _ in range(rng.randint(self.min_size, self.max_size))]

    def strategy(self, st: Any) -> Any:
        return st.lists(self.inner.strategy(st), min_size=self.min_size, max_size=self.max_size)
