"""Test cases generated from the strategy registry, for both frameworks.

Every battery of the suite takes its strategies from here (and so from :mod:`maskmix.registry`)
rather than from a list of its own: a strategy added to the registry, with a class in one
framework, is picked up by every battery of that framework, and skipped by the other's.

* :func:`variant_cases`: the named configurations of every strategy (``spec.variants``), e.g.
  ``cutout``, ``cutout_partial``, ``cutmix_variant``, ``thumbnail_mix``;
* :func:`example_cases`: one configuration per strategy that changes every selected image of 2x2
  pixels or more (``spec.example``), plus its mixing form when the strategy has a mixing switch
  (``RandomCutThumbnail-mixed``).

Imports neither torch nor keras: :meth:`Case.build` imports the framework on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from maskmix import registry
from maskmix.registry import StrategySpec

__all__ = ["NUM_CLASSES", "Case", "example_cases", "variant_cases"]

#: Classes given to every mixing case built for the tests.
NUM_CLASSES = 3


@dataclass(frozen=True)
class Case:
    """One configuration of one strategy: ``name`` (a test id), its spec and keyword arguments."""

    name: str
    spec: StrategySpec
    config: Mapping[str, Any]

    @property
    def mixes(self) -> bool:
        """Whether it takes ``(images, labels)``, returns mixed labels and needs a batch."""
        return self.spec.mixes_images(self.config)

    @property
    def moves_pixels(self) -> bool:
        """Whether it only moves or resamples existing pixels (no fill, no colour change): one
        pixel then has nowhere to go."""
        return self.spec.family == "pasting" and not self.config.get("color_jitter") and not self.mixes

    @property
    def launches(self) -> int | None:
        variant = self.spec.variants.get(self.name)
        return None if variant is None else variant.launches

    def kwargs(self, num_classes: int | None = NUM_CLASSES, **options: Any) -> dict[str, Any]:
        """The constructor arguments: the configuration, ``num_classes`` for a mixing case
        (unless given), then ``options``."""
        out = dict(self.config)
        if self.mixes and num_classes is not None:
            out.setdefault("num_classes", num_classes)
        out.update(options)
        return out

    def build(self, framework: str = "torch", num_classes: int | None = NUM_CLASSES, **options: Any) -> Any:
        """An instance of the ``framework`` class built with :meth:`kwargs`."""
        cls = registry.implementation(self.spec.name, framework)
        return cls(**self.kwargs(num_classes, **options))


def variant_cases(framework: str, *, mixing: bool | None = None) -> dict[str, Case]:
    """``{variant name: case}`` over every strategy ``framework`` implements; ``mixing`` keeps only
    the cases that mix (True) or do not (False)."""
    cases = {
        name: Case(name, spec, variant.config)
        for spec in registry.specs(framework)
        for name, variant in spec.variants.items()
    }
    return {name: case for name, case in cases.items() if mixing is None or case.mixes == mixing}


def example_cases(framework: str, *, mixing: bool | None = None) -> dict[str, Case]:
    """``{name: case}``: each strategy's :attr:`~maskmix.registry.StrategySpec.example` under its
    class name, and its mixing form under ``"<name>-mixed"`` when it has a mixing switch."""
    cases: dict[str, Case] = {}
    for spec in registry.specs(framework):
        cases[spec.name] = Case(spec.name, spec, spec.example)
        if spec.mixing_switch is not None:
            cases[f"{spec.name}-mixed"] = Case(f"{spec.name}-mixed", spec, {**spec.example, spec.mixing_switch: True})
    return {name: case for name, case in cases.items() if mixing is None or case.mixes == mixing}
