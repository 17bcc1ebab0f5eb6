"""Training integration: :class:`MaskMixCallback` (Lightning) and :class:`MaskMixModel` (Keras 3).

Names are imported lazily (module ``__getattr__``): ``from maskmix.callbacks import
MaskMixCallback`` imports torch and Lightning but never keras or tensorflow, and
``from maskmix.callbacks import MaskMixModel`` imports keras but never Lightning.

* :class:`MaskMixCallback`, :class:`MaskMixMixin` live in :mod:`maskmix.callbacks.lightning`;
* :class:`MaskMixModel` lives in :mod:`maskmix.callbacks.keras_model`;
* :func:`soft_label_targets` lives in :mod:`maskmix.torch.pipeline` (no Lightning needed).

The batch pipelines they run are public: :class:`maskmix.torch.MaskMixPipeline` and
:class:`maskmix.keras.MaskMixPipeline`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from maskmix.torch.pipeline import soft_label_targets

    from .keras_model import MaskMixModel
    from .lightning import MaskMixCallback, MaskMixMixin

__all__ = ["MaskMixCallback", "MaskMixMixin", "MaskMixModel", "soft_label_targets"]

_LAZY = {
    "MaskMixCallback": ".lightning",
    "MaskMixMixin": ".lightning",
    "soft_label_targets": "maskmix.torch.pipeline",
    "MaskMixModel": ".keras_model",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, None if module_name.startswith("maskmix.") else __name__),
                    name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
