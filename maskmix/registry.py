"""The strategy registry: every strategy declared once, framework-free.

A :class:`StrategySpec` holds everything the rest of the project needs to know about a strategy:
its parameters (name, default, validation, documentation and the :mod:`~maskmix.domains` the
tests draw from), its family (masking / mixing / pasting), which frameworks implement it, a
configuration that changes every image, the named configurations the contract tests and the
kernel-launch budgets run, its benchmark rows, its gallery pictures, the values of its main
parameter its documentation picture sweeps, and its training-script flag.

The test batteries, the benchmarks, the gallery and the examples' flags iterate over
:func:`specs` (filtered by framework) instead of keeping their own lists, so adding a strategy
means: its spec (:func:`register`), its torch and/or Keras class (whose base registers it as the
implementation, see :func:`implementation`) and its own semantic test.

Example:
    >>> from maskmix import registry
    >>> [spec.flag for spec in registry.specs(family="mixing")]
    ['cutmix', 'mixup', 'mixup_or_cutmix']
    >>> registry.get("RandomCutout").frameworks
    ('torch', 'keras')

Standard library only: importing this module imports neither torch nor keras.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from ._checks import Checker
from .domains import Domain

__all__ = [
    "FAMILIES",
    "FRAMEWORKS",
    "SPECS",
    "Param",
    "Preset",
    "StrategySpec",
    "Supersession",
    "Variant",
    "get",
    "implementation",
    "register",
    "register_implementation",
    "specs",
    "unregister",
]

Family = Literal["masking", "mixing", "pasting"]
#: Strategy families: ``masking`` erases regions (fills), ``mixing`` combines two images and their
#: labels, ``pasting`` moves or resamples pixels within an image (or, with a mixing switch, pastes
#: a partner's).
FAMILIES: tuple[str, ...] = ("masking", "mixing", "pasting")
#: The frameworks a strategy may be implemented in; each is a subpackage of ``maskmix``.
FRAMEWORKS: tuple[str, ...] = ("torch", "keras")


@dataclass(frozen=True)
class Param:
    """One constructor parameter: its name, default, checker, one-line documentation and the
    domain of valid values the tests draw from (None: not drawn, e.g. ``num_classes``).

    ``schedulable``: the parameter may follow training progress through the integrations'
    ``schedules`` option (:mod:`maskmix.schedules`); both frameworks' bases must then read it
    through :func:`maskmix.schedules.lent_value`, as a number or a tensor.
    """

    name: str
    default: Any
    check: Checker
    doc: str
    domain: Domain | None = None
    schedulable: bool = False


@dataclass(frozen=True)
class Variant:
    """A named configuration of a strategy that the contract tests run, and its budgets.

    ``launches`` is the number of kernels one eager call of a 64x3x32x32 float32 batch may launch
    (counted on the ``meta`` device, with about 15% headroom); None where not budgeted.
    ``memory`` is the peak memory one eager call may allocate beyond its input, in units of the
    batch's bytes, for a uint8 batch and a float32 one (the larger of contiguous and channels-last;
    counted on ``meta`` at 16x3x64x64, with about 10% headroom): the output itself is 1. None
    where not budgeted.
    """

    config: Mapping[str, Any]
    launches: int | None = None
    memory: tuple[float, float] | None = None


@dataclass(frozen=True)
class Preset:
    """One published setting of a strategy: what ``from_paper(setting)`` builds.

    Args:
        config: the strategy's parameters for that setting (validated at declaration).
        source: where each value comes from: the official code's file and line, or the paper's
            table / section where no code exists.
        notes: what the configuration leaves to the user (e.g. "images normalised with the CIFAR
            mean and std, so the paper's mean fill is ``zero``"), or an empty string.
    """

    config: Mapping[str, Any]
    source: str
    notes: str = ""


def _is_set(value: Any) -> bool:
    return value is not None


@dataclass(frozen=True)
class Supersession:
    """Another parameter, ``by``, that replaces a parameter where ``replaces(value of by)`` holds
    (by default: wherever ``by`` is set, not None); ``condition`` says when in words ("patch_side
    is set" by default). A value other than the default of the replaced parameter is then a
    ``ValueError``: it would have no effect, silently (Cutout's ``patch_area`` beside a
    ``patch_side``)."""

    by: str
    replaces: Callable[[Any], bool] = _is_set
    condition: str = ""

    def describe(self) -> str:
        return self.condition or f"{self.by} is set"


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, eq=False)
class StrategySpec:
    """The framework-free definition of one strategy.

    Args:
        name: the class name in every framework, e.g. ``"RandomCutout"``.
        params: its constructor parameters, common options included.
        summary: one line with the paper reference.
        flag: short snake-case name: the training scripts' ``--augment``/mixing flag, the gallery
            label and the prefix of the variants' names.
        family: ``"masking"``, ``"mixing"`` or ``"pasting"`` (see :data:`FAMILIES`).
        frameworks: the frameworks that implement it (``"torch"``, ``"keras"``).
        mixing_switch: a boolean parameter that makes a pasting strategy take ``(images, labels)``
            and mix labels (Cut-Thumbnail's ``mix_images``); None when there is none.
        switched: ``{parameter: boolean switch parameter}`` for the parameters that act only when
            the switch is True (Cut-Thumbnail's ``thumbnail_weight`` and ``label_smoothing`` need
            ``mix_images``, CutPaste's ``three_way_labels`` needs ``return_labels``): a value other
            than the default with the switch off is a ``ValueError``, never silently ignored.
        superseded: ``{parameter: Supersession or tuple of them}`` for the parameters that another
            replaces in some configurations (Cutout's ``patch_area`` where ``patch_side`` is set,
            CutPaste's scar sizes where ``scar_prob`` is 0): a value other than the default there
            is a ``ValueError``, never silently ignored.
        example: a configuration under which every selected image of 2x2 pixels or more changes
            (mixing strategies: with a partner of other content).
        draw_everything: a configuration under which one call consumes every kind of random draw
            the strategy has (fills, counts, ranges, partners, jitter).
        variants: the named configurations the contract tests and launch budgets run.
        benchmarks: benchmark rows, ``{row name: configuration}``.
        gallery: gallery pictures, ``{label: configuration}``.
        sweep: ``(parameter, values)``: the strategy's main parameter and the values its
            documentation picture shows, one row per value, each merged into the first gallery
            configuration (see :meth:`sweep_configs`); None: the picture shows the gallery
            configurations instead. Every value, merged into every gallery configuration, must be
            valid.
        papers: the published settings, ``{setting name: Preset}``, in the order the paper lists
            them; the first is what ``from_paper()`` builds without a setting (see :meth:`paper_config`).
        joint_rules: ``(owner, validated values) -> None``, raising ``ValueError`` where parameters
            valid one by one are not valid together (RandomMixupOrCutMix: both branches off); run
            by :meth:`validate`, so at construction and at every later assignment of a parameter.
    """

    name: str
    params: tuple[Param, ...]
    summary: str
    flag: str = ""
    family: Family = "masking"
    frameworks: tuple[str, ...] = FRAMEWORKS
    mixing_switch: str | None = None
    switched: Mapping[str, str] = field(default_factory=dict)
    superseded: Mapping[str, Supersession | tuple[Supersession, ...]] = field(default_factory=dict)
    example: Mapping[str, Any] = field(default_factory=dict)
    draw_everything: Mapping[str, Any] = field(default_factory=dict)
    variants: Mapping[str, Variant] = field(default_factory=dict)
    benchmarks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    gallery: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sweep: tuple[str, tuple[Any, ...]] | None = None
    papers: Mapping[str, Preset] = field(default_factory=dict)
    joint_rules: Callable[[str, Mapping[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"StrategySpec {self.name}: family must be one of {FAMILIES}; got {self.family!r}")
        unknown = set(self.frameworks) - set(FRAMEWORKS)
        if unknown or not self.frameworks:
            raise ValueError(f"StrategySpec {self.name}: frameworks must be a non-empty subset of {FRAMEWORKS}; "
                             f"got {self.frameworks!r}")
        if self.mixing_switch is not None and self.mixing_switch not in self.param_names:
            raise ValueError(f"StrategySpec {self.name}: mixing_switch {self.mixing_switch!r} is not a parameter")
        strays = sorted((set(self.switched) | set(self.switched.values())) - set(self.param_names))
        if strays:
            raise ValueError(f"StrategySpec {self.name}: switched names {strays} that are not parameters")
        strays = sorted({*self.superseded, *(rule.by for name in self.superseded for rule in self.supersessions(name))}
                        - set(self.param_names))
        if strays:
            raise ValueError(f"StrategySpec {self.name}: superseded names {strays} that are not parameters")
        # Every declared configuration must be valid: a typo fails here, at import, not in a test.
        configs = {"example": self.example, "draw_everything": self.draw_everything,
                   **{f"variant {k}": v.config for k, v in self.variants.items()},
                   **{f"benchmark {k}": v for k, v in self.benchmarks.items()},
                   **{f"gallery {k}": v for k, v in self.gallery.items()},
                   **{f"paper setting {k!r}": v.config for k, v in self.papers.items()}}
        if self.sweep is not None:
            configs.update(self._sweep_configs_to_check())
        for where, config in configs.items():
            try:
                self.validate(config)
            except (TypeError, ValueError) as error:
                raise ValueError(f"StrategySpec {self.name}: {where} is not a valid configuration: {error}") from None
        for attr in ("example", "draw_everything", "variants", "benchmarks", "gallery", "papers"):
            object.__setattr__(self, attr, _frozen(getattr(self, attr)))

    def __reduce__(self) -> str | tuple[Any, ...]:
        # A registered spec travels by name (its checks are closures, which pickle cannot carry):
        # a pickled pipeline or callback with schedules (DDP spawn, deepcopy) refers to it.
        if _SPECS.get(self.name) is self:
            return (get, (self.name,))
        return super().__reduce__()

    def _sweep_configs_to_check(self) -> dict[str, Mapping[str, Any]]:
        """``{where: configuration}`` of every sweep value merged into every gallery configuration."""
        sweep = self.sweep
        if not (isinstance(sweep, tuple) and len(sweep) == 2 and isinstance(sweep[0], str)
                and isinstance(sweep[1], tuple) and sweep[1]):
            raise ValueError(f"StrategySpec {self.name}: sweep must be (parameter name, non-empty tuple of values); "
                             f"got {sweep!r}")
        name, values = sweep
        if name not in self.param_names:
            raise ValueError(f"StrategySpec {self.name}: sweep parameter {name!r} is not a parameter")
        bases = self.gallery or {"defaults": {}}
        return {f"sweep {name}={value!r} (gallery {label})": {**base, name: value}
                for label, base in bases.items() for value in values}

    def sweep_configs(self) -> dict[str, dict[str, Any]]:
        """The rows of the documentation picture's sweep: ``{"param=value": configuration}``, each
        value of :attr:`sweep` merged into the first gallery configuration (the defaults when there
        is none); empty when the spec has no sweep."""
        if self.sweep is None:
            return {}
        name, values = self.sweep
        base = dict(next(iter(self.gallery.values()), {}))
        return {f"{name}={value!r}": {**base, name: value} for value in values}

    def paper_config(self, setting: str | None = None, *, owner: str | None = None) -> dict[str, Any]:
        """The parameters of the published ``setting`` (None: the first one declared), validated.

        An unknown setting, or a strategy without published settings, is a ``ValueError`` that
        lists the settings there are; messages start with ``owner`` (default: the spec's name).
        """
        who = owner or self.name
        if not self.papers:
            raise ValueError(f"{who}.from_paper: no published setting is declared for {self.name}")
        if setting is None:
            setting = next(iter(self.papers))
        if not isinstance(setting, str) or setting not in self.papers:
            raise ValueError(f"{who}.from_paper: setting must be one of {', '.join(map(repr, self.papers))} "
                             f"or None; got {setting!r}")
        return self.validate(self.papers[setting].config, owner=who)

    def paper_arguments(self, setting: str | None, options: Mapping[str, Any], *,
                        owner: str | None = None) -> dict[str, Any]:
        """The constructor arguments of ``from_paper(setting, **options)``: the setting's parameters
        (:meth:`paper_config`) with ``options`` on top. A parameter of the setting that an option
        replaces (``superseded``: ``kept_ratio`` over the setting's ``masked_ratio``, ``rotation=0``
        over its ``whole_degrees``) goes back to its default, the option having chosen the
        mechanism; an option that itself has no effect is refused by the constructor."""
        merged = {**self.paper_config(setting, owner=owner), **options}
        defaults = self.defaults()
        for name in self.superseded:
            if name not in options and self.replaced_by(name, merged) is not None:
                merged[name] = defaults[name]
        return merged

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def mixes_labels(self) -> bool:
        """Whether the strategy can take ``(images, labels)`` and mix labels (it has label options)."""
        return self.family == "mixing" or self.mixing_switch is not None

    def mixes_images(self, config: Mapping[str, Any]) -> bool:
        """Whether an instance built with ``config`` takes ``(images, labels)`` and needs a batch."""
        return self.family == "mixing" or (self.mixing_switch is not None and bool(config.get(self.mixing_switch)))

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate(self, values: Mapping[str, Any], owner: str | None = None) -> dict[str, Any]:
        """Validate ``values`` (missing names take their defaults) and return normalised values.

        ``owner`` is the name used in error messages (defaults to the strategy's name; subclasses
        pass their own class name).
        """
        who = owner or self.name
        unknown = sorted(set(values) - set(self.param_names))
        probability = [name for name in unknown if name in _PROBABILITY_NAMES]
        if probability and "augmentation_ratio" in self.param_names:
            # torchvision's `p` and timm's `probability` are maskmix's augmentation_ratio: say so
            # rather than list every parameter.
            raise TypeError(
                f"{who}: unexpected parameter {probability[0]}; the fraction (or, with "
                "bernoulli_mix=True, the per-image probability) of augmented images is augmentation_ratio"
            )
        if unknown:
            raise TypeError(
                f"{who}: unexpected parameter(s) {', '.join(unknown)}; expected {', '.join(self.param_names)}"
            )
        out: dict[str, Any] = {}
        for p in self.params:
            out[p.name] = p.check(who, p.name, values.get(p.name, p.default))
        self._check_partner(who, out)
        if self.joint_rules is not None:
            self.joint_rules(who, out)
        defaults = self.defaults()
        for name, switch in self.switched.items():
            if out[name] != defaults[name] and not out[switch]:
                raise ValueError(f"{who}: {name} applies only with {switch}=True; got {name}={out[name]!r} with "
                                 f"{switch}={out[switch]!r}")
        for name in self.superseded:
            rule = self.replaced_by(name, out)
            # Compared in normalised form: a default 0.1 is validated to (0.1, 0.1).
            default = self.param(name).check(who, name, defaults[name])
            if rule is not None and out[name] != default:
                raise ValueError(
                    f"{who}: {name} has no effect when {rule.describe()} ({rule.by}={out[rule.by]!r}); leave it at "
                    f"its default {defaults[name]!r}; got {name}={out[name]!r}"
                )
        return out

    def param(self, name: str) -> Param:
        """The parameter ``name`` (a ``ValueError`` if the strategy has none of that name)."""
        if name not in self.param_names:
            raise ValueError(f"{self.name} has no parameter {name!r}; its parameters: {', '.join(self.param_names)}")
        return self.params[self.param_names.index(name)]

    def supersessions(self, name: str) -> tuple[Supersession, ...]:
        """The rules under which another parameter replaces ``name`` (none for most)."""
        rules = self.superseded.get(name, ())
        return rules if isinstance(rules, tuple) else (rules,)

    def replaced_by(self, name: str, values: Mapping[str, Any]) -> Supersession | None:
        """The rule under which another parameter replaces ``name`` given the validated ``values``
        (missing ones at their defaults), or None when ``name`` acts."""
        defaults = self.defaults()
        return next((rule for rule in self.supersessions(name)
                     if rule.replaces(values.get(rule.by, defaults[rule.by]))), None)

    def _check_partner(self, who: str, out: Mapping[str, Any]) -> None:
        """The rules between ``partner`` and the other parameters (design §Conventions, sampling modes)."""
        partner = out.get("partner", "other")
        if partner == "other":
            return
        if not self.mixes_images(out):
            # Never silently ignored: a partner law means nothing where no image is mixed.
            switch = self.mixing_switch or "mixing"
            raise ValueError(
                f"{who}: partner applies only when images are mixed ({switch}=True); got "
                f"partner={partner!r} with {switch}={out.get(switch)!r}"
            )
        if out.get("sampling") == "pair" and partner != "flip":
            raise ValueError(
                f"{who}: partner must be 'other' or 'flip' with sampling='pair' (each image is mixed with the "
                f"other image of its pair, i with B-1-i); got partner={partner!r}"
            )


# --------------------------------------------------------------------------------------------
# The registry.
# --------------------------------------------------------------------------------------------

#: Names other libraries give the probability of augmenting an image (torchvision, Kornia, timm).
_PROBABILITY_NAMES = frozenset({"p", "prob", "probability"})

_SPECS: dict[str, StrategySpec] = {}
#: Every registered strategy, by class name, in registration order (a live read-only view).
SPECS: Mapping[str, StrategySpec] = MappingProxyType(_SPECS)
_IMPLEMENTATIONS: dict[tuple[str, str], type] = {}


def register(spec: StrategySpec) -> StrategySpec:
    """Add ``spec`` to the registry and return it; a name or flag already taken is a ValueError."""
    if not isinstance(spec, StrategySpec):
        raise TypeError(f"register: expected a StrategySpec; got {spec!r}")
    if spec.name in _SPECS:
        raise ValueError(f"register: a strategy named {spec.name!r} is already registered")
    if spec.flag and any(other.flag == spec.flag for other in _SPECS.values()):
        raise ValueError(f"register: the flag {spec.flag!r} of {spec.name} is already taken")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a strategy and its implementations (for tests that declare a throwaway strategy)."""
    _SPECS.pop(name, None)
    for key in [key for key in _IMPLEMENTATIONS if key[0] == name]:
        del _IMPLEMENTATIONS[key]


def get(name: str) -> StrategySpec:
    """The spec registered under ``name``."""
    try:
        return _SPECS[name]
    except KeyError:
        raise KeyError(f"no strategy named {name!r} is registered; known: {', '.join(_SPECS)}") from None


def specs(framework: str | None = None, family: str | None = None) -> tuple[StrategySpec, ...]:
    """The registered specs, in registration order, optionally those implemented in ``framework``
    and/or of ``family``."""
    if framework is not None and framework not in FRAMEWORKS:
        raise ValueError(f"specs: framework must be one of {FRAMEWORKS}; got {framework!r}")
    if family is not None and family not in FAMILIES:
        raise ValueError(f"specs: family must be one of {FAMILIES}; got {family!r}")
    return tuple(
        spec for spec in _SPECS.values()
        if (framework is None or framework in spec.frameworks) and (family is None or spec.family == family)
    )


def register_implementation(spec: StrategySpec, framework: str, cls: type) -> None:
    """Record ``cls`` as the ``framework`` implementation of ``spec`` (the framework bases call this
    for every class that declares its own ``spec``)."""
    _IMPLEMENTATIONS[(spec.name, framework)] = cls


def implementation(name: str, framework: str) -> type:
    """The ``framework`` class of the strategy ``name`` (importing ``maskmix.<framework>``, whose
    classes register themselves). A strategy whose spec does not list ``framework`` is a ValueError."""
    spec = get(name)
    if framework not in spec.frameworks:
        raise ValueError(f"{name} is not implemented for {framework}; it is for {', '.join(spec.frameworks)}")
    if (name, framework) not in _IMPLEMENTATIONS:
        importlib.import_module(f"maskmix.{framework}")
    try:
        return _IMPLEMENTATIONS[(name, framework)]
    except KeyError:
        raise LookupError(f"{name}: its spec lists {framework} but no {framework} class declares it") from None


# The built-in strategies register themselves when their specs are defined; importing them here
# (at the end: maskmix.params imports this module) makes the registry complete whichever of the
# two modules is imported first.
from . import params as _builtin_params  # noqa: E402,F401
