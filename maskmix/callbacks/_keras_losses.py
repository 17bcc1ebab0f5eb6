"""The losses of ``MaskMixModel``'s training steps, on soft targets (Keras).

The loss is computed on the soft targets (as timm's ``SoftTargetCrossEntropy`` and the torch side
of maskmix do). A loss that expects class indices has no meaning for soft targets, so the known
sparse losses are replaced *for training steps only* by their dense counterpart with the same
options: ``SparseCategoricalCrossentropy(from_logits=f, reduction=r)`` becomes
``CategoricalCrossentropy(from_logits=f, reduction=r)``, the string/function
``"sparse_categorical_crossentropy"`` becomes ``CategoricalCrossentropy()``, and the shape-guessing
strings ``"crossentropy"``/``"ce"`` become ``CategoricalCrossentropy()`` when the labels are class
indices. For cross-entropy this is exactly the λ-mix of the two sparse losses,
``(1 - f) CE(y, p) + f CE(y_partner, p)``. ``SparseCategoricalCrossentropy(ignore_class=...)`` has
no soft counterpart and is rejected. Every other loss (``CategoricalCrossentropy``,
``KLDivergence``, ``CategoricalFocalCrossentropy``, ...) is used as compiled, on the soft targets.
A custom loss that expects class indices needs ``mixed_loss=`` (its soft-target version).
Regularisation losses (``model.losses``) are added once, as Keras does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras

__all__ = ["as_loss_object", "dense_counterpart", "single"]

Tensor = Any

_SPARSE_CE_NAMES = frozenset({"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"})
_AUTO_CE_NAMES = frozenset({"crossentropy", "ce"})


class _FunctionLoss(keras.losses.Loss):
    """A ``keras.losses.Loss`` around a plain ``fn(y_true, y_pred)`` (reduction handled by Keras)."""

    def __init__(self, fn: Callable[[Tensor, Tensor], Tensor], name: str | None = None) -> None:
        super().__init__(name=name or getattr(fn, "__name__", "loss"))
        self.fn = fn

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return self.fn(y_true, y_pred)


def dense_counterpart(loss: Any, integer_labels: bool, owner: str) -> keras.losses.Loss | None:
    """The soft-target version of a sparse loss, or None when ``loss`` is used as compiled."""
    if isinstance(loss, str):
        if loss in _SPARSE_CE_NAMES or (integer_labels and loss in _AUTO_CE_NAMES):
            return keras.losses.CategoricalCrossentropy()
        return None
    if isinstance(loss, keras.losses.SparseCategoricalCrossentropy):
        config = loss.get_config()
        if config.get("ignore_class") is not None:
            raise ValueError(
                f"{owner}: SparseCategoricalCrossentropy(ignore_class={config['ignore_class']!r}) has no "
                "soft-label counterpart; remove ignore_class (mask those samples with sample_weight) or pass "
                "mixed_loss="
            )
        return keras.losses.CategoricalCrossentropy(
            from_logits=config.get("from_logits", False),
            reduction=config.get("reduction", "sum_over_batch_size"),
            name=config.get("name", "categorical_crossentropy"),
            dtype=getattr(loss, "dtype", None),
        )
    if loss is keras.losses.sparse_categorical_crossentropy:
        return keras.losses.CategoricalCrossentropy()
    return None


def as_loss_object(loss: Any) -> keras.losses.Loss:
    """``loss`` (a name, a function or a ``keras.losses.Loss``) as a ``keras.losses.Loss``."""
    if isinstance(loss, keras.losses.Loss):
        return loss
    resolved = keras.losses.get(loss)
    if isinstance(resolved, keras.losses.Loss):
        return resolved
    return _FunctionLoss(resolved)


def single(value: Any) -> Any:
    """Unwrap one-item lists/tuples/dicts (single-output models)."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return value[0]
    if isinstance(value, Mapping) and len(value) == 1:
        return next(iter(value.values()))
    return value
