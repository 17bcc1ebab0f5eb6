"""The options of the training integrations, checked once for both frameworks (design §Layers, integrations).

``MaskMixCallback`` / ``MaskMixMixin`` (Lightning, through :class:`maskmix.torch.MaskMixPipeline`)
and ``MaskMixModel`` (Keras, through :class:`maskmix.keras.MaskMixPipeline`) take the same
options: the per-image augmentations (``transforms=`` on the torch side, ``augmentations=`` on the
Keras side), ``mix``, ``mix_weights``, ``num_classes``, ``label_smoothing`` and ``seed`` (and, on
the torch side, ``image_key``/``label_key``). This module holds their rules, so that both
integrations accept the same values and refuse the same values with the same exception type and
the same message (which names the integration's class). The frameworks only answer questions
about their own objects through a :class:`Framework` (is this a transform/layer, does it mix).

The rules, as a timm/Lightning/Keras user expects them:

* ``transforms``/``augmentations``: None, one per-image transform/layer, or a list of them; none
  of them may mix images (those go in ``mix``) or return labels (``return_labels=True``).
* ``mix``: None, one maskmix mixing transform/layer or a non-empty list of them (one is chosen
  per batch).
* ``mix_weights``: None (uniform) or one finite weight ``>= 0`` per ``mix`` item, at least one of
  them positive (``[0, 1]`` is a fine choice: the first one is never used); needs ``mix``.
* ``num_classes``: None or an integer ``>= 2``; every value given (the integration's and the
  ``mix`` items' own) must agree, so that every batch has soft labels of one width. One class is
  refused, the ``mix`` items' own included: ``one_hot(y, 1)`` maps label 0 to ``[1]`` and label 1
  to ``[0]``, so binary class indices would train on inverted targets. Binary labels for one
  sigmoid output are float ``(B, 1)`` columns of 0.0/1.0 without ``num_classes`` (mixed and
  smoothed as they are), or class indices with ``num_classes=2`` and two output units.
* ``label_smoothing``: a float in ``[0, 1)``. It needs no ``mix``: smoothing alone turns the
  labels into smoothed soft rows (class indices need ``num_classes``). When the integration's
  and a ``mix`` item's own are both non-zero they must agree; the smoothing is applied once.
* ``seed``: None or an integer in ``[0, 2**64)``.
* ``image_key``/``label_key``: a position ``>= 0`` (tuple/list batches) or a str (dict batches),
  different from each other.

Integers may be any ``numbers.Integral`` but ``bool`` (NumPy integers included); reals any
``numbers.Real`` but ``bool``; they are stored as Python ``int``/``float``. A value of the wrong
kind raises ``TypeError``, one of the right kind out of its domain ``ValueError``.

Standard library only.

Example:
    >>> from maskmix.integration_options import check_seed
    >>> check_seed("MaskMixModel", 3)
    3
    >>> check_seed("MaskMixModel", -1)
    Traceback (most recent call last):
    ...
    ValueError: MaskMixModel: seed must be None or an integer in [0, 2**64); got -1
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat, SupportsIndex, TypeAlias

from maskmix._checks import MAX_INTEGER, _fail, _is_int, _is_real, number_in
from maskmix.geometry import MASK64

__all__ = [
    "MIXING_EXAMPLES",
    "PIPELINE_OPTIONS",
    "SEED_EXPECTED",
    "Framework",
    "IntegerOption",
    "Options",
    "RealOption",
    "arguments_repr",
    "check_keys",
    "check_label_smoothing",
    "check_mix",
    "check_mix_weights",
    "check_num_classes",
    "check_options",
    "check_seed",
    "check_transforms",
    "describe",
    "refuse_later_option",
]

#: How the integrations annotate their number options: the checks take Python and NumPy numbers
#: (``num_classes=y.max() + 1``, ``seed=np.int64(0)``), and ``int`` alone refused NumPy integers
#: under mypy. Real aliases, not strings, so that ``typing.get_type_hints`` resolves them in the
#: integrations' modules (LightningCLI/jsonargparse read the types there).
IntegerOption: TypeAlias = int | SupportsIndex
RealOption: TypeAlias = float | SupportsFloat

#: The maskmix classes that mix, as named in the messages.
MIXING_EXAMPLES = "RandomCutMix, RandomMixup, RandomCutThumbnail(mix_images=True)"

_LABEL_SMOOTHING = number_in(0.0, 1.0, lo_open=False, hi_open=True)


@dataclass(frozen=True)
class Framework:
    """What the option rules need to know about one framework's objects.

    Args:
        kind: the framework's word for an augmentation object, ``"transform"`` or ``"layer"``.
        transforms_name: the name of the per-image augmentation option (``"transforms"`` or
            ``"augmentations"``).
        accepted: what an augmentation must be, as said in messages (e.g. ``"a torchvision v2
            transform"``).
        is_augmentation: whether an object may be given as a per-image augmentation.
        walk: the object and every augmentation nested in it (containers such as ``Compose``).
        mixing: ``True`` for an object that mixes images and labels, ``False`` for a maskmix
            mixing object that does not mix as configured (``RandomCutThumbnail(mix_images=False)``),
            ``None`` for anything else.
        foreign_mixing: for another library's mixing object (torchvision's ``CutMix``), the text
            to say instead of its name (why it is refused); None otherwise.
    """

    kind: str
    transforms_name: str
    accepted: str
    is_augmentation: Callable[[Any], bool]
    walk: Callable[[Any], Iterable[Any]]
    mixing: Callable[[Any], bool | None]
    foreign_mixing: Callable[[Any], str | None] = lambda value: None


@dataclass(frozen=True)
class Options:
    """The validated options (see :func:`check_options`)."""

    transforms: list[Any]
    mix: list[Any]
    mix_weights: list[float] | None
    num_classes: int | None
    label_smoothing: float
    seed: int | None


_PLAIN = (str, int, float, bool, type(None))


def describe(value: Any) -> str:
    """How a received value is shown in messages: ``repr`` for plain data, the type's name otherwise.

    The same value shows the same on both frameworks (a transform's and a layer's ``repr`` differ).
    """
    if isinstance(value, _PLAIN) or (_is_real(value) and type(value).__module__ == "numpy"):
        return repr(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) or _is_real(v) for v in value):
        return repr(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(describe(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    return type(value).__name__


def arguments_repr(name: str, arguments: Iterable[tuple[str, Any, Any]]) -> str:
    """``name(arg=value, ...)``, the ``repr`` of both pipelines: each ``(argument, value, default)``
    shown when the value is not the default, as a constructor call that reads back what was built."""
    shown = ", ".join(f"{arg}={value!r}" for arg, value, default in arguments
                      if value is not default and not (type(value) is type(default) and value == default))
    return f"{name}({shown})"


def _items(value: Any) -> tuple[list[Any], bool]:
    """``(items, single)``: a list/tuple as a list, anything else as one item."""
    if isinstance(value, (list, tuple)):
        return list(value), False
    return [value], True


def check_transforms(owner: str, value: Any, framework: Framework) -> list[Any]:
    """The per-image augmentations as a list (None is ``[]``)."""
    name, kind = framework.transforms_name, framework.kind
    if value is None:
        return []
    items, _ = _items(value)
    for i, item in enumerate(items):
        where = f"{name}[{i}]"
        if not framework.is_augmentation(item):
            raise TypeError(f"{owner}: {where} must be {framework.accepted}; got {describe(item)}")
        nested = list(framework.walk(item))
        mixing = [m for m in nested if framework.mixing(m) or framework.foreign_mixing(m) is not None]
        if mixing:
            raise ValueError(
                f"{owner}: {where} is or contains the mixing {kind} {type(mixing[0]).__name__}; {name} takes "
                f"per-image {kind}s only: pass mixing {kind}s as mix="
            )
        paired = [m for m in nested if getattr(type(m), "takes_pairs", False) is True]
        if paired:
            raise TypeError(
                f"{owner}: {where} ({type(paired[0]).__name__}) augments (lr_upsampled, hr) pairs, not the "
                f"batch's images: call it on each pair (in the dataset or your own step), or use RandomCutBlur"
            )
        labelled = [m for m in nested if getattr(m, "return_labels", False) is True]
        if labelled:
            raise ValueError(
                f"{owner}: {where} ({type(labelled[0]).__name__}) has return_labels=True, which returns "
                "(images, is_augmented); use return_labels=False in a training integration"
            )
    return items


def check_mix(owner: str, value: Any, framework: Framework) -> list[Any]:
    """The mixing transforms/layers as a list (None is ``[]``)."""
    kind = framework.kind
    if value is None:
        return []
    items, single = _items(value)
    if not items:
        raise ValueError(f"{owner}: mix must be None, a mixing {kind} or a non-empty list of them; got []")
    for i, item in enumerate(items):
        where = "mix" if single else f"mix[{i}]"
        state = framework.mixing(item)
        if state is None:
            foreign = framework.foreign_mixing(item)
            raise TypeError(
                f"{owner}: {where} must be a maskmix mixing {kind} ({MIXING_EXAMPLES}); "
                f"got {foreign if foreign is not None else describe(item)}"
            )
        if state is False:
            raise ValueError(
                f"{owner}: {where} is {type(item).__name__} with mix_images=False, which does not mix images; "
                f"pass it in {framework.transforms_name}=, or set mix_images=True"
            )
    return items


def check_mix_weights(owner: str, value: Any, mix: Sequence[Any], framework: Framework) -> list[float] | None:
    """One weight ``>= 0`` per mix item, at least one positive; None (uniform) stays None."""
    kind = framework.kind
    if value is None:
        return None
    if not mix:
        raise ValueError(f"{owner}: mix_weights needs mix; got mix_weights={describe(value)} and mix=None")
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{owner}: mix_weights must be a list of numbers, one per mix {kind}; got {describe(value)}")
    if len(value) != len(mix):
        raise ValueError(
            f"{owner}: mix_weights must have one weight per mix {kind} ({len(mix)}); "
            f"got {len(value)}: {describe(value)}"
        )
    weights = []
    for i, weight in enumerate(value):
        expected = "a finite number >= 0"
        if not _is_real(weight):
            _fail(owner, f"mix_weights[{i}]", expected, weight, TypeError)
        if not (math.isfinite(float(weight)) and float(weight) >= 0):
            _fail(owner, f"mix_weights[{i}]", expected, weight)
        weights.append(float(weight))
    if not any(w > 0 for w in weights):
        raise ValueError(f"{owner}: mix_weights must have at least one positive weight; got {describe(value)}")
    return weights


def _where(mix: Sequence[Any], i: int) -> str:
    return "mix" if len(mix) == 1 else f"mix[{i}]"


#: Why one class is refused, and what a binary-classification user gives instead.
_ONE_CLASS = (
    "one_hot(y, 1) maps label 0 to [1] and label 1 to [0] (inverted binary targets). For binary classification "
    "with one sigmoid output, give float labels of shape (B, 1) holding 0.0/1.0 and leave num_classes unset (they "
    "are mixed and smoothed as they are); with two output units, give class indices and num_classes=2"
)


def check_num_classes(owner: str, value: Any, mix: Sequence[Any], framework: Framework) -> int | None:
    """None or an integer ``>= 2``, agreeing with every ``num_classes`` the mix items have.

    One class is refused here although the mixing layers/transforms accept it (where it checks the
    width of a binary column): the integrations one-hot class indices with it, inverting them.
    """
    if value is not None:
        expected = "None or an integer >= 2"
        if not _is_int(value):
            _fail(owner, "num_classes", expected, value, TypeError)
        if int(value) == 1:
            raise ValueError(f"{owner}: num_classes must be None or an integer >= 2; got 1: {_ONE_CLASS}")
        if int(value) < 2:
            _fail(owner, "num_classes", expected, value)
        if int(value) > MAX_INTEGER:
            _fail(owner, "num_classes", f"at most {MAX_INTEGER}", value)
        value = int(value)
    given = [(f"num_classes={value}", value)] if value is not None else []
    given += [
        (f"{_where(mix, i)} ({type(m).__name__}) num_classes={m.num_classes}", m.num_classes)
        for i, m in enumerate(mix) if getattr(m, "num_classes", None) is not None
    ]
    for what, classes in given:  # only a mix item's can still be 1
        if classes == 1:  # the integration one-hots class indices with a mix item's own num_classes too
            raise ValueError(
                f"{owner}: num_classes must be None or an integer >= 2, the mix {framework.kind}s' own included; "
                f"got {what}: {_ONE_CLASS}"
            )
    if len({v for _, v in given}) > 1:
        raise ValueError(
            f"{owner}: num_classes must agree between {owner} and its mix {framework.kind}s (give it once); got "
            + ", ".join(what for what, _ in given)
        )
    return value


def check_label_smoothing(owner: str, value: Any, mix: Sequence[Any], framework: Framework) -> float:
    """A float in ``[0, 1)``; when non-zero, equal to every non-zero ``label_smoothing`` of the mix items."""
    smoothing = _LABEL_SMOOTHING(owner, "label_smoothing", value)
    if smoothing > 0:
        for i, m in enumerate(mix):
            own = float(getattr(m, "label_smoothing", 0.0))
            if own > 0 and own != smoothing:
                raise ValueError(
                    f"{owner}: label_smoothing must agree between {owner} and its mix {framework.kind}s when both "
                    f"are non-zero (give it once); got label_smoothing={smoothing}, {_where(mix, i)} "
                    f"({type(m).__name__}) label_smoothing={own}"
                )
    return smoothing


#: What an integration's ``seed`` must be: 64 bits, as torch's generators take (a larger seed was
#: cut to its low 64 bits on torch, silently, and failed inside TensorFlow on Keras).
SEED_EXPECTED = "None or an integer in [0, 2**64)"


#: The pipeline options :func:`check_options` validates together, which a later assignment must
#: not slip past: the torch pipeline checks a new value again; a Keras pipeline or MaskMixModel
#: takes them at construction only (its traced step reads the values it was built with, and
#: get_config saves them), see :func:`refuse_later_option`.
PIPELINE_OPTIONS = frozenset({"mix_weights", "num_classes", "label_smoothing", "seed"})


def refuse_later_option(owner: str, name: str, value: Any, current: Any) -> None:
    """Raise for an assignment of one of :data:`PIPELINE_OPTIONS` after construction that changes it
    (``current`` is the value it has): it was taken unchecked, the training step kept the value it
    was built with, and ``get_config`` saved the new one (a saved model then differed from the one
    that trained, or failed to load). The same value again is accepted: a subclass that keeps its
    own ``self.num_classes = num_classes`` after ``super().__init__`` is the usual Keras habit."""
    try:
        if bool(current == value):
            return
    except (TypeError, ValueError):  # values that do not compare (arrays): a change
        pass
    raise ValueError(
        f"{owner}: {name} is fixed at construction (the training step uses the value it was built with); "
        f"build a new {owner} with {name}={value!r}"
    )


def check_seed(owner: str, value: Any) -> int | None:
    """None or an integer in ``[0, 2**64)``."""
    if value is None:
        return None
    if not _is_int(value):
        _fail(owner, "seed", SEED_EXPECTED, value, TypeError)
    if not 0 <= int(value) <= MASK64:
        _fail(owner, "seed", SEED_EXPECTED, value)
    return int(value)


def _check_key(owner: str, name: str, key: Any) -> Hashable:
    if isinstance(key, str):
        return key
    expected = "a position >= 0 (an int, for tuple/list batches) or a key (a str, for dict batches)"
    if not _is_int(key):
        _fail(owner, name, expected, key, TypeError)
    if int(key) < 0:
        _fail(owner, name, expected, key)
    return int(key)


def check_keys(owner: str, image_key: Any, label_key: Any) -> tuple[Hashable, Hashable]:
    """``(image_key, label_key)``: positions ``>= 0`` or str keys, different from each other."""
    images, labels = _check_key(owner, "image_key", image_key), _check_key(owner, "label_key", label_key)
    if images == labels:
        raise ValueError(f"{owner}: image_key and label_key must differ; both are {images!r}")
    return images, labels


def check_options(
    owner: str,
    framework: Framework,
    *,
    transforms: Any = None,
    mix: Any = None,
    mix_weights: Any = None,
    num_classes: Any = None,
    label_smoothing: Any = 0.0,
    seed: Any = None,
) -> Options:
    """Check every shared option, in this order, and return them normalised.

    Args:
        owner: the integration's class name, first word of every message.
        framework: the framework's answers about its objects.
        transforms: the per-image augmentations (``transforms=`` / ``augmentations=``).
        mix, mix_weights, num_classes, label_smoothing, seed: as documented by the integrations.

    Raises:
        TypeError: a value of the wrong kind.
        ValueError: a value of the right kind outside its domain, or options that disagree.
    """
    items = check_transforms(owner, transforms, framework)
    mixes = check_mix(owner, mix, framework)
    weights = check_mix_weights(owner, mix_weights, mixes, framework)
    classes = check_num_classes(owner, num_classes, mixes, framework)
    smoothing = check_label_smoothing(owner, label_smoothing, mixes, framework)
    return Options(items, mixes, weights, classes, smoothing, check_seed(owner, seed))
