"""Keras' functional-model and ``clone_model`` workarounds of ``MaskMixModel``, in one place.

* **The functional form.** Keras turns ``Model(inputs, outputs)`` into a functional model by
  splicing ``Functional`` into the bases of the class being instantiated (and of all its bases up
  to ``keras.Model``); done to ``MaskMixModel`` itself that would break every later subclass. So
  ``MaskMixModel.__new__`` builds a functional twin per class (:func:`functional_class`), and a
  subclass using the functional-subclass pattern gets ``Functional`` added to its own bases only
  (:func:`inject_functional`).
* **Unknown keywords.** Keras' ``Functional`` swallows unknown keywords, so a misspelled option
  would be ignored silently: :func:`check_keywords` refuses them, with a suggestion.
* **Cloning.** ``keras.models.clone_model`` rebuilds a functional model with
  ``type(model)(new_inputs, new_outputs, name=...)``, which carries no maskmix option. The model's
  graph walk for the clone (the only caller that passes both ``operation_fn`` and ``call_fn``)
  remembers the model with the walk's outputs (:func:`remember_clone_source`), and the
  constructor that receives exactly those outputs and no option takes that model's options
  (:func:`take_clone_source`).
"""

from __future__ import annotations

import difflib
import inspect
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import keras

from maskmix.keras._compat import Functional, functional_like_constructor

__all__ = [
    "UNSET",
    "check_keywords",
    "functional_class",
    "functional_outputs",
    "inject_functional",
    "is_functional_call",
    "register_functional_class",
    "remember_clone_source",
    "take_clone_source",
]

#: "Not given" for the optional arguments of Keras' ``_run_through_graph``.
UNSET: Any = object()

# Keywords the functional form hands to Keras: `Functional.__init__`'s own and `Layer.__init__`'s
# (Keras' functional constructor ignores the latter, except `name` and `trainable`, but accepts them).
_FUNCTIONAL_KEYWORDS = frozenset(
    {"inputs", "outputs", "name", "trainable", "input_shape", "input_dim"}
    | {
        name for name, parameter in inspect.signature(keras.layers.Layer.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
)

_FUNCTIONAL_CLASSES: dict[type, type] = {}


def is_functional_call(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """The ``Model(inputs, outputs)`` signature detection of Keras."""
    return (len(args) == 2) or (len(args) == 1 and "outputs" in kwargs) or ("inputs" in kwargs and "outputs" in kwargs)


def functional_outputs(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """The ``outputs`` of a functional constructor call (see :func:`is_functional_call`)."""
    return args[1] if len(args) == 2 else kwargs.get("outputs")


def check_keywords(owner: str, kwargs: Mapping[str, Any], options: Iterable[str]) -> None:
    """Refuse keywords that neither Keras' functional constructor nor the model's ``options`` know."""
    unknown = sorted(key for key in kwargs if key not in _FUNCTIONAL_KEYWORDS)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, (*options, *sorted(_FUNCTIONAL_KEYWORDS)), n=1)
        hints.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
    raise TypeError(f"{owner}: unrecognized keyword argument(s): {', '.join(hints)}")


def inject_functional(cls: type, root: type) -> None:
    """Make a subclass that calls ``super().__init__(inputs, outputs, ...)`` a functional model.

    This is Keras' "functional subclass" pattern: ``keras.Model.__init__`` splices ``Functional``
    into the hierarchy of the class being initialised (and of all its bases up to
    ``keras.Model``). Here only ``cls`` itself gets ``Functional`` as a last base, so that
    ``root`` (``MaskMixModel``) and its other subclasses are left alone.
    """
    name = root.__name__
    if cls is root:
        raise TypeError(f"{name}: call {name}(inputs, outputs, ...) to build a functional model")
    try:
        cls.__bases__ = (*cls.__bases__, Functional)
    except TypeError as error:
        raise TypeError(
            f"{name}: {cls.__name__} calls super().__init__(inputs, outputs, ...) (the functional-subclass "
            f"pattern) but Functional cannot be added to its bases ({error}); derive it from "
            f"Functional{name} instead"
        ) from None


def register_functional_class(cls: type, twin: type) -> None:
    """Use ``twin`` (a ``class X(cls, Functional)``) as the functional form of ``cls``."""
    _FUNCTIONAL_CLASSES[cls] = twin


def functional_class(cls: type) -> type:
    """A functional twin of a MaskMixModel subclass (``class X(cls, Functional)``), cached."""
    if cls not in _FUNCTIONAL_CLASSES:
        twin = type(f"Functional{cls.__name__}", (cls, Functional), {
            "__module__": cls.__module__,
            "__doc__": f"Functional form of {cls.__name__} (see MaskMixModel).",
        })
        _FUNCTIONAL_CLASSES[cls] = twin
    return _FUNCTIONAL_CLASSES[cls]


class _CloneSource(threading.local):
    """The last ``clone_model`` walk of a MaskMixModel in this thread: ``(outputs, weakref(model))``."""

    pending: tuple[list[Any], weakref.ref[Any]] | None = None


_CLONE_SOURCE = _CloneSource()


def remember_clone_source(model: Any, outputs: Any, owner: str) -> None:
    """Remember ``model`` with the outputs of its ``clone_model`` graph walk (see the module docstring)."""
    if not functional_like_constructor(type(model)):
        raise TypeError(
            f"{owner}: keras.models.clone_model cannot clone a {type(model).__name__} (its constructor "
            "takes no inputs/outputs, so Keras would return a plain Functional model without the "
            f"maskmix options); use {type(model).__name__}.from_config(model.get_config())"
        )
    _CLONE_SOURCE.pending = (keras.tree.flatten(outputs), weakref.ref(model))


def take_clone_source(outputs: Any) -> Any:
    """The model whose ``clone_model`` walk produced exactly ``outputs`` (consumed), or None."""
    pending = _CLONE_SOURCE.pending
    if pending is None:
        return None
    flat, ref = pending
    given = keras.tree.flatten(outputs)
    if len(given) != len(flat) or any(a is not b for a, b in zip(given, flat, strict=True)):
        return None
    _CLONE_SOURCE.pending = None
    return ref()
