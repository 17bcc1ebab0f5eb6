"""Every private Keras API that :mod:`maskmix.keras` (and ``maskmix.callbacks``) uses, in one place.

Keras 3 keeps a few helpers its own preprocessing layers rely on under ``keras.src``: the
``DynamicBackend`` that lets a layer compute with TensorFlow inside ``tf.data`` whatever the
global backend, ``in_tf_graph`` and ``is_in_jax_tracing_scope`` to tell where a call runs,
``no_automatic_dependency_tracking`` to keep a layer's private caches out of its tracked
state, and the ``Functional`` model class behind the functional-subclass pattern. A layer's
``_convert_input_args`` switch keeps ``Layer.__call__`` from casting uint8 images and integer
labels to the compute dtype. From TensorFlow, one: AutoGraph's list of modules it leaves as
written (:func:`keep_out_of_autograph`). The rest of the package reaches these only through this
module, and ``tests/test_compat.py`` checks each one against the installed release, naming the
private API when a release removes or changes it.

Example:
    >>> from maskmix.keras import _compat
    >>> _compat.in_tf_graph()
    False
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import keras
from keras.src import backend as _keras_backend
from keras.src.backend.common import stateless_scope
from keras.src.layers.preprocessing.image_preprocessing import base_image_preprocessing_layer
from keras.src.models.functional import Functional, functional_like_constructor
from keras.src.utils import backend_utils, jax_utils, tracking

__all__ = [
    "PRIVATE_APIS",
    "BaseImagePreprocessingLayer",
    "DynamicBackend",
    "Functional",
    "converted_epoch_batches",
    "functional_like_constructor",
    "in_stateless_scope",
    "in_tf_graph",
    "inputs_kept_as_given",
    "is_in_jax_tracing_scope",
    "keep_out_of_autograph",
    "no_automatic_dependency_tracking",
    "random_seed_dtype",
]

#: The private names used, as the tests and error reports spell them.
PRIVATE_APIS: tuple[str, ...] = (
    "keras.src.utils.backend_utils.DynamicBackend",
    "keras.src.utils.backend_utils.in_tf_graph",
    "keras.src.backend.common.stateless_scope.in_stateless_scope",
    "keras.src.backend.random_seed_dtype",
    "keras.src.layers.preprocessing.image_preprocessing.base_image_preprocessing_layer.BaseImagePreprocessingLayer",
    "keras.src.utils.jax_utils.is_in_jax_tracing_scope",
    "keras.src.utils.tracking.no_automatic_dependency_tracking",
    "keras.src.models.functional.Functional",
    "keras.src.models.functional.functional_like_constructor",
    "keras.layers.Layer._convert_input_args",
    "tensorflow.python.autograph.core.config.CONVERSION_RULES",
    "keras.src.trainers.trainer.Trainer._symbolic_build",
)

#: A backend namespace (``.numpy``, ``.random``, ``.cast``...) that can be switched to TensorFlow
#: for one call (``set_backend("tensorflow")``, then ``reset()``); ``.name`` is the active one.
DynamicBackend = backend_utils.DynamicBackend

#: ``in_tf_graph()``: True inside a TensorFlow graph (``tf.function``, ``tf.data``), False eagerly.
in_tf_graph = backend_utils.in_tf_graph

#: ``random_seed_dtype()``: the dtype of a ``SeedGenerator``'s state on the backend (int64 on
#: TensorFlow, int32 on torch, uint32 on JAX): the seeds a layer can take.
random_seed_dtype = _keras_backend.random_seed_dtype

#: Keras' image preprocessing layers (``RandomFlip``, ``Resizing``, ``RandAugment``...): they
#: return their compute dtype, float32, of a uint8 batch, with the values kept (0..255).
BaseImagePreprocessingLayer = base_image_preprocessing_layer.BaseImagePreprocessingLayer

#: ``in_stateless_scope()``: True inside a ``keras.StatelessScope`` (``layer.stateless_call``, the
#: JAX trainer's steps), where a variable's assignments are collected instead of written.
in_stateless_scope = stateless_scope.in_stateless_scope

#: ``is_in_jax_tracing_scope(x)``: True when ``x`` is a JAX tracer (a ``jax.jit`` trace).
is_in_jax_tracing_scope = jax_utils.is_in_jax_tracing_scope

#: Method decorator: attributes a layer sets inside it are not wrapped and tracked by Keras.
no_automatic_dependency_tracking = tracking.no_automatic_dependency_tracking


def converted_epoch_batches(epochs: Any, convert: Callable[[Any], Any]) -> Iterator[Any]:
    """Keras' epoch iterator as ``Trainer._symbolic_build(iterator=...)`` reads its first batch,
    ``(begin, end, batches)`` per step with the batches a list or an iterator, with ``convert``
    applied to the batches read (lazily: only what Keras reads is read)."""
    for begin, end, batches in epochs:
        if isinstance(batches, (list, tuple)):
            yield begin, end, [convert(batch) for batch in batches]
        else:
            yield begin, end, map(convert, batches)


@contextlib.contextmanager
def inputs_kept_as_given(layer: keras.layers.Layer) -> Iterator[None]:
    """Within the block, ``layer(...)`` passes its inputs to ``call`` without converting them to
    the layer's compute dtype (``Layer._convert_input_args`` off, then restored)."""
    convert: Any = layer._convert_input_args
    layer._convert_input_args = False
    try:
        yield
    finally:
        layer._convert_input_args = convert


def keep_out_of_autograph() -> None:
    """Have TensorFlow's AutoGraph call maskmix's functions as they are written, as it does Keras'
    own (a ``DoNotConvert`` rule for the ``maskmix`` package, put first among its rules).

    AutoGraph rewrites the Python of what a ``tf.function`` or ``tf.data`` map calls unless the
    function's package is on that list. ``Layer.__call__`` is Keras' and keeps a call out, but a
    layer's ``get_random_transformation``, ``transform_images``, ``transform_labels`` ... (Keras'
    preprocessing-layer API, e.g. one transformation for images and masks in a ``tf.data`` map) and
    the functional forms (``random_cutmix``, ``cutblur_pair``) were rewritten: 1-4 s more per trace,
    and "AutoGraph could not transform ..." warnings for functions it cannot parse. maskmix's code
    needs no rewriting: it has no Python control flow on tensor values (it runs the same under XLA
    and ``jax.jit``). Done once TensorFlow is loaded (maskmix.keras' import, every layer's
    construction); nothing when it is not, or when a TensorFlow release moved its config.
    """
    global _autograph_rule_added
    if _autograph_rule_added or "tensorflow" not in sys.modules:
        return
    try:
        from tensorflow.python.autograph.core import config

        rules = tuple(config.CONVERSION_RULES)
        if not any(isinstance(rule, config.DoNotConvert) and rule.matches(__name__) for rule in rules):
            config.CONVERSION_RULES = (config.DoNotConvert("maskmix"), *rules)
    except (ImportError, AttributeError, TypeError):  # moved or changed: rewriting is slow, not wrong
        pass
    _autograph_rule_added = True


_autograph_rule_added = False
