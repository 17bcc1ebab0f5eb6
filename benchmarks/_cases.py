"""The maskmix configurations every benchmark times, framework-free.

Each entry maps a row name to ``(class name, keyword arguments)``; the torch scripts build them from
``maskmix.torch`` and the Keras script from ``maskmix.keras`` (same names, same parameters), so that
every table shows the same configurations. ``NUM_CLASSES`` is added for the mixing strategies.
"""

from __future__ import annotations

from typing import Any

NUM_CLASSES = 10

#: The configurations of every speed table: the ten strategies, plus the costlier variants of two.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "RandomCutout": ("RandomCutout", {}),
    "RandomErasing": ("RandomErasing", {}),
    "RandomErasing(count 1-3, noise)": ("RandomErasing", {"patch_count": (1, 3), "fill_method": "noise"}),
    "RandomHideAndSeek": ("RandomHideAndSeek", {}),
    "RandomGridMask": ("RandomGridMask", {}),
    "RandomGridMask(rotation)": ("RandomGridMask", {"rotation": 360}),
    "RandomCutMix": ("RandomCutMix", {}),
    "RandomMixup": ("RandomMixup", {}),
    "RandomCutBlur": ("RandomCutBlur", {}),
    "RandomCutPaste": ("RandomCutPaste", {}),
    "RandomCutSwap": ("RandomCutSwap", {}),
    "RandomCutThumbnail": ("RandomCutThumbnail", {}),
}

#: Variants whose sampling differs (Beta by gamma draws, the area variant of CutMix): counted by
#: ``op_counts.py``, not timed.
SAMPLING_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "RandomCutMix(alpha 0.5, variant)": ("RandomCutMix", {"alpha": 0.5, "patch_area": (0.1, 0.5)}),
    "RandomMixup(alpha 0.2)": ("RandomMixup", {"alpha": 0.2}),
}

MIXING = ("RandomCutMix", "RandomMixup")


def build(module: Any, cases: dict[str, tuple[str, dict[str, Any]]] = CASES) -> dict[str, tuple[Any, bool]]:
    """``{row name: (instance, mixes labels)}`` for ``cases``, built from ``module``
    (``maskmix.torch`` or ``maskmix.keras``); a mixing instance is called with labels."""
    out = {}
    for name, (class_name, kwargs) in cases.items():
        mixes = class_name in MIXING
        extra = {"num_classes": NUM_CLASSES} if mixes else {}
        out[name] = (getattr(module, class_name)(**kwargs, **extra), mixes)
    return out
