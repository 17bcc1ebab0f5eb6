"""The maskmix configurations every benchmark times, framework-free, taken from the registry.

The rows are the registered strategies' benchmark rows (:attr:`maskmix.registry.StrategySpec.benchmarks`,
``{row name: keyword arguments}``), in registration order, filtered by framework: the torch
scripts build them from the torch classes and the Keras script from the Keras layers (same names,
same parameters), so that every table shows the same configurations, and a strategy added to the
registry appears in every table of the frameworks that implement it. ``NUM_CLASSES`` is added to
the configurations that mix images and labels (:meth:`~maskmix.registry.StrategySpec.mixes_images`).

Importing this module imports neither torch nor keras: :func:`build` imports the framework asked for.
"""

from __future__ import annotations

from typing import Any

from maskmix import registry

NUM_CLASSES = 10

#: ``{row name: (class name, keyword arguments)}``.
Cases = dict[str, tuple[str, dict[str, Any]]]


def cases(framework: str | None = None) -> Cases:
    """The rows of every speed table: each registered strategy's benchmark rows (the default
    configuration, plus the costlier variants of some), those implemented in ``framework``."""
    return {row: (spec.name, dict(config))
            for spec in registry.specs(framework=framework) for row, config in spec.benchmarks.items()}


#: Variants whose sampling differs (Beta by gamma draws, the area variant of CutMix): counted by
#: ``op_counts.py``, not timed.
SAMPLING_VARIANTS: Cases = {
    "RandomCutMix(alpha 0.5, variant)": ("RandomCutMix", {"alpha": 0.5, "patch_area": (0.1, 0.5)}),
    "RandomMixup(alpha 0.2)": ("RandomMixup", {"alpha": 0.2}),
}


def mixes(class_name: str, kwargs: dict[str, Any]) -> bool:
    """Whether an instance of ``class_name`` built with ``kwargs`` is called with labels."""
    return registry.get(class_name).mixes_images(kwargs)


def build(framework: str, rows: Cases | None = None) -> dict[str, tuple[Any, bool]]:
    """``{row name: (instance, mixes labels)}`` for ``rows`` (default: :func:`cases` of
    ``framework``), built from the ``framework`` classes (``"torch"`` or ``"keras"``); a mixing
    instance gets ``num_classes`` and is called with labels."""
    out = {}
    for name, (class_name, kwargs) in (cases(framework) if rows is None else rows).items():
        mixing = mixes(class_name, kwargs)
        extra = {"num_classes": NUM_CLASSES} if mixing else {}
        out[name] = (registry.implementation(class_name, framework)(**kwargs, **extra), mixing)
    return out
