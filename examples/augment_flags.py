"""Command-line flags that choose the augmentations, shared by the training examples.

timm's flags (``--reprob --remode --recount --mixup --cutmix --mixup-prob --mixup-switch-prob
--smoothing``) keep timm's meaning, with two differences:

* ``--remode``: timm fills erased pixels in *normalised* space: ``const`` with 0, ``rand`` with one
  standard-normal colour per patch, ``pixel`` with per-pixel standard-normal noise. The examples
  augment the **uint8** ``[0, 255]`` images *before* normalising them (``(x / 255 - 0.5) / 0.25``),
  where those values would all be almost black, so the pixel-space counterparts are used:
  ``const`` -> ``"gray"`` (exact: normalised 0 is the mean, 127.5), ``rand`` -> ``"random"`` (one
  colour per image, uniform over 0..255) and ``pixel`` -> ``"noise"`` (per-pixel uniform over
  0..255): uniform instead of normal draws.
* ``--mixup-prob`` is the fraction of each batch's images that are mixed; timm's ``--mixup-prob``
  is, in its default batch mode, the probability that the whole batch is mixed.

``--cutmix``'s box is the CutMix paper code's (``box_rounding="truncate"``: sides truncated, the
box clipped at the borders), within a pixel of timm's ``rand_bbox``; ``--mixup-or-cutmix`` takes
timm's box itself (``box_rounding="timm"``).

``--recount N`` is timm's maximum count: each image erases a count drawn uniformly in ``1..N``.
``--augment`` adds any masking or pasting strategy by its flag and ``--set strategy.parameter=value``
sets one of its parameters (or one of mixup's / cutmix's when enabled), e.g.::

    --augment cutout,gridmask --set cutout.patch_area=0.25 --set gridmask.rotation=360

The strategies come from the registry (:mod:`maskmix.registry`), filtered by the framework the
example trains with: ``--augment`` takes the flags of the registered strategies that do not mix
(:func:`strategies`), and every registered mixing strategy gets a flag of its own, ``--<flag>
ALPHA`` (:func:`mixing`; timm's ``--mixup`` and ``--cutmix`` are two of them; a strategy without a
single ``alpha``, such as ``--mixup-or-cutmix``, is enabled by any value > 0 and takes its
parameters from ``--set``).

The flags are parsed into an :class:`AugmentPlan` (names and keyword arguments, no framework
import); each example turns the plan into torch transforms or Keras layers of the same names.
"""

from __future__ import annotations

import argparse
import ast
import math
from dataclasses import dataclass, field
from typing import Any

from maskmix import registry  # framework-free: imports neither torch nor keras

#: timm's mixing flags, in timm's order: when both are enabled, ``--mixup-switch-prob`` is the
#: probability of the second instead of the first.
TIMM_MIXING = ("mixup", "cutmix")
#: timm's ``--remode`` -> maskmix fill methods for the examples' uint8 images (augmented before
#: normalisation): timm's normalised-space fills (0, normal per patch, normal per pixel) become the
#: pixel-space ones (the mean gray exactly; uniform colour per image; uniform noise per pixel).
REMODES = {"const": "gray", "rand": "random", "pixel": "noise"}


def strategies(framework: str = "torch") -> dict[str, str]:
    """``--augment`` names -> class names: the flags of the registered strategies that do not mix,
    implemented in ``framework``, in registry order."""
    return {spec.flag: spec.name for spec in registry.specs(framework=framework)
            if spec.flag and spec.family != "mixing"}


def mixing(framework: str = "torch") -> dict[str, str]:
    """Mixing flags (``--<flag> ALPHA``, and the ``--set`` names) -> class names: the registered
    mixing strategies implemented in ``framework``, timm's (:data:`TIMM_MIXING`) first in timm's
    order, then the others in registry order."""
    found = {spec.flag: spec.name for spec in registry.specs(framework=framework, family="mixing") if spec.flag}
    order = [flag for flag in TIMM_MIXING if flag in found] + [flag for flag in found if flag not in TIMM_MIXING]
    return {flag: found[flag] for flag in order}


def __getattr__(name: str) -> dict[str, str]:
    # The torch choices under their former constant names, read from the registry when asked.
    if name == "STRATEGIES":
        return strategies()
    if name == "MIXING":
        return mixing()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _option(flag: str) -> str:
    """The command-line option of a mixing flag: ``--cutmix``, ``--some-mix``."""
    return "--" + flag.replace("_", "-")


@dataclass
class AugmentPlan:
    """What to apply to each training batch: masking steps in order, then one mixing choice.

    ``masking`` holds ``(class name, kwargs)`` pairs; ``mixing`` holds ``(class name, kwargs)``
    candidates of which one is drawn per batch with probabilities ``mix_weights``;
    ``label_smoothing`` goes to the mixing transforms (or to the loss when nothing mixes).
    """

    masking: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    mixing: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    mix_weights: list[float] = field(default_factory=list)
    label_smoothing: float = 0.0

    @property
    def empty(self) -> bool:
        return not self.masking and not self.mixing

    def describe(self) -> str:
        def one(name: str, kwargs: dict[str, Any]) -> str:
            return f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"

        parts = [one(*step) for step in self.masking]
        if self.mixing:
            choices = " | ".join(f"{one(*m)} p={w:g}" for m, w in zip(self.mixing, self.mix_weights, strict=True))
            parts.append(f"mix: {choices}")
        return "; ".join(parts) or "none"


def add_augment_flags(parser: argparse.ArgumentParser, framework: str = "torch") -> None:
    """Add the augmentation flags to an example's parser, for the strategies ``framework``
    (``"torch"`` or ``"keras"``) implements."""
    parser.set_defaults(augment_framework=framework)
    group = parser.add_argument_group("augmentation (timm-compatible flags plus --augment)")
    group.add_argument("--reprob", type=float, default=0.0, help="random erasing probability per image (timm)")
    group.add_argument("--remode", choices=sorted(REMODES), default="pixel",
                       help="random erasing fill: const = mid gray, rand = one uniform random colour per "
                            "image, pixel = uniform per-pixel noise (timm draws normal values in normalised "
                            "space; on the examples' uint8 pixels the uniform counterparts are used, const "
                            "is exact)")
    group.add_argument("--recount", type=int, default=1,
                       help="random erasing: at most this many patches per image, the count uniform in "
                            "1..RECOUNT (timm's max_count)")
    for flag, name in mixing(framework).items():
        if "alpha" in registry.get(name).param_names:
            timm = " (timm)" if flag in TIMM_MIXING else f" ({name})"
            text = f"{flag} alpha; 0 disables{timm}"
        else:
            # No single alpha (RandomMixupOrCutMix has mixup_alpha and cutmix_alpha): the value only switches it on.
            text = (f"any value > 0 enables {name} (the value is not an alpha: set its parameters with "
                    f"--set {flag}.PARAM=VALUE); 0 disables")
        group.add_argument(_option(flag), dest=flag, type=float, default=0.0, help=text)
    group.add_argument("--mixup-prob", type=float, default=1.0,
                       help="fraction of each batch's images that are mixed (timm's --mixup-prob is "
                            "the probability per batch in its batch mode)")
    group.add_argument("--mixup-switch-prob", type=float, default=0.5,
                       help="probability of CutMix instead of Mixup when both are enabled, and the "
                            "switch_prob of --mixup-or-cutmix (timm)")
    group.add_argument("--smoothing", type=float, default=0.0,
                       help="label smoothing (timm; its train.py defaults to 0.1, the examples to 0)")
    group.add_argument("--augment", default=None,
                       help=f"comma-separated strategies among {', '.join(strategies(framework))}; the "
                            "default is the example's own masking, unless --reprob (timm's erasing) is "
                            "given; --augment '' for none")
    group.add_argument("--set", action="append", default=[], metavar="STRATEGY.PARAM=VALUE",
                       help=f"a parameter of an --augment strategy (or of {'/'.join(mixing(framework))}); "
                            "repeatable")
    group.add_argument("--augment-ratio", type=float, default=1.0,
                       help="augmentation_ratio of the --augment strategies")


def _check_flags(args: argparse.Namespace, mix_flags: dict[str, str]) -> None:
    """The timm-style numeric flags, named as on the command line (ValueError on a bad one)."""

    def need(ok: bool, flag: str, expected: str, value: Any) -> None:
        if not ok:
            raise ValueError(f"{flag} must be {expected}; got {value!r}")

    def fraction(value: float) -> bool:
        return math.isfinite(value) and 0.0 <= value <= 1.0

    need(fraction(args.reprob), "--reprob", "in [0, 1]", args.reprob)
    need(args.recount >= 1, "--recount", "an integer >= 1", args.recount)
    for flag in mix_flags:
        value = getattr(args, flag)
        need(math.isfinite(value) and value >= 0, _option(flag), "an alpha >= 0 (0 disables it)", value)
    need(fraction(args.mixup_prob), "--mixup-prob", "in [0, 1]", args.mixup_prob)
    need(fraction(args.mixup_switch_prob), "--mixup-switch-prob", "in [0, 1]", args.mixup_switch_prob)
    need(math.isfinite(args.smoothing) and 0.0 <= args.smoothing < 1.0, "--smoothing", "in [0, 1)", args.smoothing)
    need(fraction(args.augment_ratio), "--augment-ratio", "in [0, 1]", args.augment_ratio)


def _check_step(name: str, kwargs: dict[str, Any], *, mixing: bool, mix_flags: dict[str, str]) -> None:
    """Validate one step against maskmix's framework-free spec (ValueError / TypeError)."""
    if "num_classes" in kwargs:
        raise ValueError(f"{name}: num_classes comes from the data set; do not --set it")
    spec = registry.get(name)
    spec.validate(kwargs, owner=name)
    if mixing:
        return
    # The masking steps map images to images: a step that also returns labels cannot be one.
    if spec.mixes_images(kwargs):
        mix_with = " / ".join(f"{_option(flag)} ALPHA" for flag in mix_flags)
        raise ValueError(f"{name}: {spec.mixing_switch}=True mixes labels, which a masking step cannot do; "
                         f"mix with {mix_with}")
    if kwargs.get("return_labels"):
        raise ValueError(f"{name}: return_labels=True returns labels, which a masking step cannot do")


def _mix_weights(enabled: list[str], switch_prob: float) -> list[float]:
    """The probability of each enabled mixing choice: equal shares, except that timm's pair, when
    both are enabled, shares one: ``1 - switch_prob`` of it to the first, ``switch_prob`` to the
    second (with those two alone: timm's ``[1 - p, p]``)."""
    pair = all(flag in enabled for flag in TIMM_MIXING)
    share = 1.0 / (len(enabled) - (1 if pair else 0)) if enabled else 0.0
    split = dict(zip(TIMM_MIXING, (1.0 - switch_prob, switch_prob), strict=True)) if pair else {}
    return [share * split.get(flag, 1.0) for flag in enabled]


def plan_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> AugmentPlan:
    """Build the plan; flag errors go through ``parser.error`` (one line, exit status 2).

    Every step's keyword arguments are validated here against its spec in :mod:`maskmix.registry`
    (no framework import), so a bad ``--set`` value or timm flag is reported before any data loads.
    The strategies are those of the framework given to :func:`add_augment_flags`.
    """
    try:
        return _plan(args, parser)
    except (ValueError, TypeError) as exc:
        parser.error(" ".join(str(exc).split()))  # exits with status 2


def _plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> AugmentPlan:
    framework = getattr(args, "augment_framework", "torch")
    choices, mix_flags = strategies(framework), mixing(framework)
    overrides: dict[str, dict[str, Any]] = {}
    for item in args.set:
        key, sep, raw = item.partition("=")
        strategy, dot, param = key.partition(".")
        if not sep or not dot or not param:
            parser.error(f"--set expects STRATEGY.PARAM=VALUE; got {item!r}")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw  # a bare word such as noise or bicubic
        overrides.setdefault(strategy, {})[param] = value

    _check_flags(args, mix_flags)
    plan = AugmentPlan(label_smoothing=args.smoothing)
    augment = args.augment
    if augment is None:
        # The example's own masking gives way to timm's erasing: --reprob alone is timm's erasing,
        # not timm's on top of the example's (which would erase most images, some twice).
        augment = "" if args.reprob > 0 else getattr(args, "augment_default", "")
    names = [n.strip() for n in augment.split(",") if n.strip()]
    unknown = [n for n in names if n not in choices]
    if unknown:
        parser.error(f"--augment: unknown strategies {unknown}; choose from {', '.join(choices)}")
    stray = sorted(set(overrides) - set(names) - set(mix_flags))
    if stray:
        parser.error(f"--set names strategies that are not in --augment: {stray}")
    for flag in mix_flags:
        if flag in overrides and getattr(args, flag) == 0:
            enable = "ALPHA" if "alpha" in registry.get(mix_flags[flag]).param_names else "1"
            parser.error(f"--set {flag}.{next(iter(overrides[flag]))}: {flag} is disabled; "
                         f"enable it with {_option(flag)} {enable}")
    for name in names:
        plan.masking.append((choices[name], {"augmentation_ratio": args.augment_ratio, **overrides.get(name, {})}))
    if args.reprob > 0:
        plan.masking.append(("RandomErasing", {
            "patch_area": (0.02, 1 / 3), "patch_aspect_ratio": (0.3, 1 / 0.3),
            # timm's --recount is max_count: the count per image is uniform in 1..recount.
            "patch_count": (1, args.recount) if args.recount > 1 else 1,
            "fill_method": REMODES[args.remode],
            "augmentation_ratio": args.reprob, "bernoulli_mix": True,
        }))
    mixing_steps, enabled = [], []
    for flag, name in mix_flags.items():
        alpha = getattr(args, flag)
        if alpha > 0:
            # A mixing strategy without an alpha is enabled by any value > 0.
            kwargs = {"alpha": alpha} if "alpha" in registry.get(name).param_names else {}
            mixing_steps.append((name, {**kwargs, **overrides.get(flag, {})}))
            enabled.append(flag)
    for name, kwargs in mixing_steps:
        given = kwargs.get("label_smoothing")
        if given is not None and args.smoothing > 0 and given != args.smoothing:
            # The training loops smooth with --smoothing too (the pipeline, the loss): one value.
            raise ValueError(f"{name}: label_smoothing={given!r} disagrees with --smoothing {args.smoothing}; "
                             "set one of them")
        kwargs.setdefault("augmentation_ratio", args.mixup_prob)
        kwargs.setdefault("label_smoothing", args.smoothing)
        spec = registry.get(name)
        # The defaults timm's script implies, only where they act: an option another one replaces
        # (box_rounding beside a --set patch_area, switch_prob with a branch off) is refused.
        if "box_rounding" in spec.param_names and spec.replaced_by("box_rounding", kwargs) is None:
            # timm's rand_bbox: RandomMixupOrCutMix has it; RandomCutMix's closest is its truncated box.
            kwargs.setdefault("box_rounding", "timm" if "switch_prob" in spec.param_names else "truncate")
        if "switch_prob" in spec.param_names and spec.replaced_by("switch_prob", kwargs) is None:
            kwargs.setdefault("switch_prob", args.mixup_switch_prob)  # timm's Mixup as one transform
    for name, kwargs in plan.masking:
        _check_step(name, kwargs, mixing=False, mix_flags=mix_flags)
    for name, kwargs in mixing_steps:
        _check_step(name, kwargs, mixing=True, mix_flags=mix_flags)
    plan.mixing = mixing_steps
    plan.mix_weights = _mix_weights(enabled, args.mixup_switch_prob)
    return plan
