"""Schedules: strategy parameters that follow training progress (SPEC §9, schedules).

Papers change how strongly they augment as training goes on: GridMask's official code sets the
per-image probability to ``0.8 * min(1, epoch / 240)`` at each epoch (``grid.set_prob(epoch,
max_epoch)``), timm switches Mixup/CutMix off from ``mixup_off_epoch`` on. A schedule is a
callable of the training progress, the epoch as a float (``epoch + fraction of the epoch done``;
the integrations pass the whole epoch number at each epoch start, as the papers' code does),
returning the parameter's value:

* :func:`constant` ``(value)``;
* :func:`ramp` ``(start, end, epochs=N, start_epoch=0)``: linear from ``start`` at
  ``start_epoch`` to ``end`` at ``start_epoch + N``, constant outside (GridMask:
  ``ramp(0.0, 0.8, epochs=240)``);
* :func:`switch_off` ``(value, epoch=E, off_value=0.0)``: ``value`` before epoch ``E``,
  ``off_value`` from it on (timm's ``mixup_off_epoch``);
* :func:`piecewise` ``({epoch: value, ...})``: a step function.

Any callable ``f(epoch) -> float`` is accepted as well; its values are checked when they are
used. The integrations take the schedules per transform::

    schedules={"RandomGridMask": {"augmentation_ratio": ramp(0.0, 0.8, epochs=240)}}

keyed by the transform's class name, its position in ``transforms + mix`` (``transforms`` is
``augmentations`` in Keras), or the transform object itself; the inner keys are parameters the
strategy's spec declares schedulable (:attr:`maskmix.registry.Param.schedulable`: today
``augmentation_ratio`` for every strategy; no other parameter, such as a patch size, can follow
a schedule yet). ``MaskMixCallback``/``MaskMixMixin`` (Lightning) and ``MaskMixModel`` (Keras)
set each value from the trainer's whole epoch number, so the values change at epoch starts only;
in a loop of your own, call ``pipeline.set_epoch(epoch)`` on the torch or Keras
``MaskMixPipeline``, or ``pipeline.set_epoch(epoch + step / steps)`` before each step for a
schedule that moves every step (``steps`` the steps of an epoch; GridMask's detection ramp is per
iteration). A new
value reaches compiled steps without retracing: the torch pipeline hands it to its compiled step
as a tensor input, and the Keras pipeline keeps it in a non-trainable variable read inside the
``jit_compile`` training step.

The values reach the transforms by :func:`lending` (nothing is written on the user's
transforms); a transform reads its parameter with :func:`lent_value`.

Standard library only: importing this module imports neither torch nor keras.

Example:
    >>> from maskmix.schedules import ramp, switch_off
    >>> gridmask = ramp(0.0, 0.8, epochs=240)
    >>> [gridmask(epoch) for epoch in (0, 120, 240, 300)]
    [0.0, 0.4, 0.8, 0.8]
    >>> mixup = switch_off(1.0, epoch=3)  # timm's mixup_off_epoch=3
    >>> [mixup(epoch) for epoch in range(5)]
    [1.0, 1.0, 1.0, 0.0, 0.0]
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ._checks import _is_real

__all__ = [
    "Schedule",
    "Scheduled",
    "constant",
    "from_config",
    "lending",
    "lent_value",
    "piecewise",
    "ramp",
    "resolve",
    "switch_off",
]

ScheduleLike = Callable[[float], float]


def _number(owner: str, name: str, value: Any) -> float:
    if not _is_real(value) or not math.isfinite(float(value)):
        kind = TypeError if not _is_real(value) else ValueError
        raise kind(f"{owner}: {name} must be a finite number; got {value!r}")
    return float(value)


def _epoch(owner: str, epoch: Any) -> float:
    if not _is_real(epoch) or not math.isfinite(float(epoch)) or float(epoch) < 0:
        kind = TypeError if not _is_real(epoch) else ValueError
        raise kind(f"{owner}: epoch must be a finite number >= 0 (the epoch, plus the fraction of it done); "
                   f"got {epoch!r}")
    return float(epoch)


class Schedule:
    """Base of the built-in schedules: ``schedule(epoch) -> value``.

    Built-in schedules also know the values they can take (:meth:`bounds`, checked against the
    parameter's domain when an integration is built) and serialise themselves
    (:meth:`get_config`, :func:`from_config`; ``MaskMixModel`` saves them with the model).
    """

    kind: str = ""

    def __call__(self, epoch: float) -> float:
        raise NotImplementedError

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value the schedule takes."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """``{"kind": ..., **arguments}``; :func:`from_config` rebuilds the schedule."""
        raise NotImplementedError


@dataclass(frozen=True)
class _Constant(Schedule):
    value: float
    kind = "constant"

    def __call__(self, epoch: float) -> float:
        _epoch("constant", epoch)
        return self.value

    def bounds(self) -> tuple[float, float]:
        return self.value, self.value

    def get_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value}

    def __repr__(self) -> str:
        return f"constant({self.value!r})"


@dataclass(frozen=True)
class _Ramp(Schedule):
    start: float
    end: float
    epochs: float
    start_epoch: float
    kind = "ramp"

    def __call__(self, epoch: float) -> float:
        done = min(max((_epoch("ramp", epoch) - self.start_epoch) / self.epochs, 0.0), 1.0)
        # start * (1 - t) + end * t would not give `end` exactly at t = 1 in every case.
        return self.end if done >= 1.0 else self.start + (self.end - self.start) * done

    def bounds(self) -> tuple[float, float]:
        return min(self.start, self.end), max(self.start, self.end)

    def get_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end, "epochs": self.epochs,
                "start_epoch": self.start_epoch}

    def __repr__(self) -> str:
        return f"ramp({self.start!r}, {self.end!r}, epochs={self.epochs!r}, start_epoch={self.start_epoch!r})"


@dataclass(frozen=True)
class _Piecewise(Schedule):
    boundaries: tuple[float, ...]
    values: tuple[float, ...]
    kind = "piecewise"

    def __call__(self, epoch: float) -> float:
        epoch = _epoch("piecewise", epoch)
        value = self.values[0]
        for boundary, then in zip(self.boundaries, self.values, strict=True):
            if epoch >= boundary:
                value = then
        return value

    def bounds(self) -> tuple[float, float]:
        return min(self.values), max(self.values)

    def get_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "values": [[b, v] for b, v in zip(self.boundaries, self.values, strict=True)]}

    def __repr__(self) -> str:
        pairs = ", ".join(f"{b!r}: {v!r}" for b, v in zip(self.boundaries, self.values, strict=True))
        return f"piecewise({{{pairs}}})"


def constant(value: float) -> Schedule:
    """The same ``value`` at every epoch.

    Example:
        >>> constant(0.5)(10)
        0.5
    """
    return _Constant(_number("constant", "value", value))


def ramp(start: float, end: float, *, epochs: float, start_epoch: float = 0.0) -> Schedule:
    """Linear from ``start`` (at ``start_epoch`` and before) to ``end`` (at ``start_epoch + epochs``
    and after): ``start + (end - start) * min(1, max(0, (epoch - start_epoch) / epochs))``.

    GridMask's official schedule, ``prob = 0.8 * min(1, epoch / 240)`` on ImageNet, is
    ``ramp(0.0, 0.8, epochs=240)`` for ``augmentation_ratio`` (with ``bernoulli_mix=True``, as
    ``RandomGridMask.from_paper("imagenet")`` sets it).

    Args:
        start: the value up to ``start_epoch`` (a finite number).
        end: the value from ``start_epoch + epochs`` on (a finite number).
        epochs: the length of the ramp in epochs (a finite number > 0).
        start_epoch: where the ramp starts (a finite number >= 0, default 0).

    Example:
        >>> warm = ramp(0.0, 1.0, epochs=4, start_epoch=2)
        >>> [warm(epoch) for epoch in range(8)]
        [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    epochs = _number("ramp", "epochs", epochs)
    if epochs <= 0:
        raise ValueError(f"ramp: epochs must be a finite number > 0; got {epochs!r}")
    start_epoch = _number("ramp", "start_epoch", start_epoch)
    if start_epoch < 0:
        raise ValueError(f"ramp: start_epoch must be a finite number >= 0; got {start_epoch!r}")
    return _Ramp(_number("ramp", "start", start), _number("ramp", "end", end), epochs, start_epoch)


def piecewise(values: Mapping[float, float] | Mapping[int, float] | Sequence[Sequence[float]]) -> Schedule:
    """A step function: ``{epoch: value}``, each value holding from its epoch until the next one.

    Before the first epoch listed, the first value holds. ``piecewise({0: 1.0, 30: 0.5, 60: 0.0})``
    augments every image for 30 epochs, half of them for 30 more, then none.

    Args:
        values: a non-empty mapping (or sequence of pairs) from epochs (finite numbers >= 0,
            increasing) to values (finite numbers).

    Example:
        >>> steps = piecewise({0: 1.0, 30: 0.5, 60: 0.0})
        >>> [steps(epoch) for epoch in (0, 29.5, 30, 59, 60, 100)]
        [1.0, 1.0, 0.5, 0.5, 0.0, 0.0]
    """
    pairs = list(values.items()) if isinstance(values, Mapping) else values
    if not isinstance(pairs, (list, tuple)) or not pairs or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
        raise TypeError(f"piecewise: values must be a non-empty mapping {{epoch: value}} or a sequence of "
                        f"(epoch, value) pairs; got {values!r}")
    boundaries = tuple(_number("piecewise", "each epoch", b) for b, _ in pairs)
    if boundaries[0] < 0 or any(b >= c for b, c in itertools.pairwise(boundaries)):
        raise ValueError(f"piecewise: the epochs must be >= 0 and increasing; got {list(boundaries)}")
    return _Piecewise(boundaries, tuple(_number("piecewise", "each value", v) for _, v in pairs))


def switch_off(value: float, *, epoch: float, off_value: float = 0.0) -> Schedule:
    """``value`` before ``epoch``, ``off_value`` from ``epoch`` on (timm's ``mixup_off_epoch``).

    timm turns Mixup/CutMix off when ``epoch >= mixup_off_epoch``; with maskmix that is the
    mixing transform's ``augmentation_ratio`` going to 0 (its labels are still one-hot and
    smoothed, as timm's are): ``{"RandomCutMix": {"augmentation_ratio": switch_off(1.0,
    epoch=mixup_off_epoch)}}``.

    Args:
        value: the value before ``epoch`` (a finite number).
        epoch: the first epoch of ``off_value`` (a finite number > 0).
        off_value: the value from ``epoch`` on (default 0).

    Example:
        >>> off = switch_off(0.5, epoch=10)
        >>> off(9.9), off(10)
        (0.5, 0.0)
    """
    at = _number("switch_off", "epoch", epoch)
    if at <= 0:
        raise ValueError(f"switch_off: epoch must be a finite number > 0; got {epoch!r}")
    return _Piecewise((0.0, at), (_number("switch_off", "value", value), _number("switch_off", "off_value", off_value)))


_BUILDERS: dict[str, Callable[[dict[str, Any]], Schedule]] = {
    "constant": lambda c: constant(c["value"]),
    "ramp": lambda c: ramp(c["start"], c["end"], epochs=c["epochs"], start_epoch=c.get("start_epoch", 0.0)),
    "piecewise": lambda c: piecewise([tuple(pair) for pair in c["values"]]),
}
#: The keys each kind's config may hold ("kind" included).
_KEYS: dict[str, frozenset[str]] = {
    "constant": frozenset({"kind", "value"}),
    "ramp": frozenset({"kind", "start", "end", "epochs", "start_epoch"}),
    "piecewise": frozenset({"kind", "values"}),
}


def from_config(config: Mapping[str, Any]) -> Schedule:
    """The schedule :meth:`Schedule.get_config` describes.

    Example:
        >>> from_config(ramp(0.0, 0.8, epochs=240).get_config())
        ramp(0.0, 0.8, epochs=240.0, start_epoch=0.0)
    """
    kind = config.get("kind") if isinstance(config, Mapping) else None
    if kind not in _BUILDERS:
        raise ValueError(f"from_config: not a schedule config (kind one of {sorted(_BUILDERS)}); got {config!r}")
    unknown = sorted(map(str, set(config) - _KEYS[kind]))
    if unknown:
        # Dropped, silently: {"kind": "constant", "value": 0.5, "epochs": 3} loaded as constant(0.5).
        raise ValueError(f"from_config: the {kind} schedule config has unknown keys {unknown} (it takes "
                         f"{sorted(_KEYS[kind])}); got {config!r}")
    try:
        return _BUILDERS[kind](dict(config))
    except KeyError as missing:
        raise ValueError(f"from_config: the {kind} schedule config lacks {missing}; got {config!r}") from None


# --------------------------------------------------------------------------------------------
# What the integrations share: which transform parameter each schedule drives.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Scheduled:
    """One scheduled parameter: the transform, the parameter's name, the schedule, the key given,
    and the strategy spec that says the parameter's domain."""

    transform: Any
    param: str
    schedule: ScheduleLike
    key: Any
    spec: Any

    @property
    def check(self) -> Callable[[str, str, Any], Any]:
        """The parameter's check, looked up in the spec (a closure: the spec, not the check, is
        what a pickled pipeline carries)."""
        return self.spec.param(self.param).check

    @property
    def where(self) -> str:
        return f"schedules[{self.key!r}][{self.param!r}]"

    def value(self, owner: str, epoch: float) -> float:
        """The schedule's value at ``epoch``, checked against the parameter's domain."""
        try:
            got = self.schedule(epoch)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{owner}: {self.where} failed at epoch {epoch}: {error}") from None
        name = type(self.transform).__name__
        try:
            return float(self.check(name, self.param, got))
        except (TypeError, ValueError) as error:
            raise type(error)(f"{owner}: {self.where} gave {got!r} at epoch {epoch}: {error}") from None


def resolve(owner: str, schedules: Any, items: Sequence[Any], walk: Callable[[Any], Iterator[Any]],
            spec_of: Callable[[Any], Any], kind: str) -> list[Scheduled]:
    """Check an integration's ``schedules`` option and say what each schedule drives.

    Args:
        owner: the integration's class name (first word of every message).
        schedules: None, or ``{key: {parameter: schedule}}``; a key is a class name (of exactly
            one maskmix transform of ``items``, nested ones included), an index into ``items`` or
            one of the transforms itself.
        items: the integration's ``transforms + mix`` (``augmentations + mix`` in Keras), in order.
        walk: the framework's walk over a transform and the transforms nested in it.
        spec_of: the strategy spec of a maskmix transform, None for anything else.
        kind: the framework's word for a transform (``"transform"``/``"layer"``), for messages.

    Returns:
        One :class:`Scheduled` per scheduled parameter, built-in schedules' bounds already checked.
    """
    if schedules is None:
        return []
    if not isinstance(schedules, Mapping):
        raise TypeError(f"{owner}: schedules must be None or a dict {{{kind} class name, position or {kind}: "
                        f"{{parameter: schedule}}}}; got {schedules!r}")
    found: list[Any] = []
    for item in items:
        for t in walk(item):
            if spec_of(t) is not None and all(t is not seen for seen in found):
                found.append(t)
    names = [type(t).__name__ for t in found]
    out: list[Scheduled] = []
    for key, params in schedules.items():
        transform = _transform_for(owner, key, items, found, names, spec_of, kind)
        if not isinstance(params, Mapping) or not params:
            raise TypeError(f"{owner}: schedules[{key!r}] must be a non-empty dict {{parameter: schedule}}; "
                            f"got {params!r}")
        spec = spec_of(transform)
        allowed = [p.name for p in spec.params if getattr(p, "schedulable", False)]
        for param, schedule in params.items():
            if param not in allowed:
                raise ValueError(f"{owner}: schedules[{key!r}]: {type(transform).__name__} cannot schedule "
                                 f"{param!r}; its schedulable parameters are {allowed}")
            if not callable(schedule):
                raise TypeError(f"{owner}: schedules[{key!r}][{param!r}] must be a schedule (maskmix.schedules: "
                                f"ramp, switch_off, piecewise, constant) or a callable of the epoch; got {schedule!r}")
            if any(s.transform is transform and s.param == param for s in out):
                raise ValueError(f"{owner}: {type(transform).__name__}'s {param} is scheduled twice in schedules "
                                 f"(keys {[s.key for s in out if s.transform is transform]} and {key!r})")
            entry = Scheduled(transform, param, schedule, key, spec)
            check = entry.check
            if isinstance(schedule, Schedule):
                for bound in schedule.bounds():
                    try:
                        check(type(transform).__name__, param, bound)
                    except (TypeError, ValueError) as error:
                        raise ValueError(f"{owner}: {entry.where} = {schedule!r} reaches {bound!r}: {error}") from None
            out.append(entry)
    return out


def _transform_for(owner: str, key: Any, items: Sequence[Any], found: list[Any], names: list[str],
                   spec_of: Callable[[Any], Any], kind: str) -> Any:
    if isinstance(key, str):
        matches = [t for t, name in zip(found, names, strict=True) if name == key]
        if not matches:
            raise ValueError(f"{owner}: schedules key {key!r} names none of the maskmix {kind}s "
                             f"({', '.join(names) or 'none'})")
        if len(matches) > 1:
            raise ValueError(f"{owner}: schedules key {key!r} names {len(matches)} {kind}s; key them by position "
                             f"in {kind}s + mix, or by the {kind} itself")
        return matches[0]
    if isinstance(key, int) and not isinstance(key, bool):
        if not 0 <= key < len(items):
            raise ValueError(f"{owner}: schedules key {key} is not a position in {kind}s + mix "
                             f"(0 to {len(items) - 1})")
        if spec_of(items[key]) is None:
            raise ValueError(f"{owner}: schedules key {key} is {type(items[key]).__name__}, not a maskmix {kind}")
        return items[key]
    if any(key is t for t in found):
        return key
    raise TypeError(f"{owner}: a schedules key must be a maskmix {kind}'s class name, its position in {kind}s + "
                    f"mix, or the {kind} itself (one of this integration's); got {key!r}")


# --------------------------------------------------------------------------------------------
# How the values reach the transforms: lent for the call, never written on them.
# --------------------------------------------------------------------------------------------

_LENT: ContextVar[Mapping[int, Mapping[str, Any]] | None] = ContextVar("maskmix_scheduled_values", default=None)


@contextlib.contextmanager
def lending(values: Mapping[int, Mapping[str, Any]]) -> Iterator[None]:
    """Within the block, :func:`lent_value` returns ``values[id(transform)][name]``.

    The integrations lend the scheduled values (Python numbers in eager steps, tensors or
    variables in compiled ones) for one step, so that nothing is written on the user's
    transforms and a compiled step reads them as inputs rather than as constants.
    """
    token = _LENT.set(values)
    try:
        yield
    finally:
        _LENT.reset(token)


def lent_value(transform: Any, name: str, default: Any) -> Any:
    """The value lent for ``transform``'s parameter ``name`` (see :func:`lending`), else ``default``."""
    lent = _LENT.get()
    if lent is None:
        return default
    values = lent.get(id(transform))
    if values is None:
        return default
    return values.get(name, default)
