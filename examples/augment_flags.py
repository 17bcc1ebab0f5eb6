"""Command-line flags that choose the augmentations, shared by the training examples.

timm's flags keep their meaning (``--reprob --remode --recount --mixup --cutmix --mixup-prob
--mixup-switch-prob --smoothing``); ``--augment`` adds any masking or pasting strategy by name and
``--set strategy.parameter=value`` sets one of its parameters, e.g.::

    --augment cutout,gridmask --set cutout.patch_area=0.25 --set gridmask.rotation=360

The flags are parsed into an :class:`AugmentPlan` (names and keyword arguments, no framework
import); each example turns the plan into torch transforms or Keras layers of the same names.
"""

from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass, field
from typing import Any

#: ``--augment`` names -> class names (the same in maskmix.torch and maskmix.keras).
STRATEGIES = {
    "cutout": "RandomCutout",
    "erasing": "RandomErasing",
    "hide_and_seek": "RandomHideAndSeek",
    "gridmask": "RandomGridMask",
    "cutblur": "RandomCutBlur",
    "thumbnail": "RandomCutThumbnail",
    "cutpaste": "RandomCutPaste",
    "cutswap": "RandomCutSwap",
}
#: timm's ``--remode`` -> maskmix fill methods.
REMODES = {"const": "zero", "rand": "normal_per_patch", "pixel": "normal"}


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


def add_augment_flags(parser: argparse.ArgumentParser) -> None:
    """Add the augmentation flags to an example's parser."""
    group = parser.add_argument_group("augmentation (timm-compatible flags plus --augment)")
    group.add_argument("--reprob", type=float, default=0.0, help="random erasing probability per image (timm)")
    group.add_argument("--remode", choices=sorted(REMODES), default="pixel", help="random erasing fill (timm)")
    group.add_argument("--recount", type=int, default=1, help="random erasing patches per image (timm)")
    group.add_argument("--mixup", type=float, default=0.0, help="mixup alpha; 0 disables (timm)")
    group.add_argument("--cutmix", type=float, default=0.0, help="cutmix alpha; 0 disables (timm)")
    group.add_argument("--mixup-prob", type=float, default=1.0,
                       help="fraction of each batch's images that are mixed (timm)")
    group.add_argument("--mixup-switch-prob", type=float, default=0.5,
                       help="probability of CutMix instead of Mixup when both are enabled (timm)")
    group.add_argument("--smoothing", type=float, default=0.0, help="label smoothing (timm)")
    group.add_argument("--augment", default="", help=f"comma-separated strategies among {', '.join(STRATEGIES)}")
    group.add_argument("--set", action="append", default=[], metavar="STRATEGY.PARAM=VALUE",
                       help="a parameter of an --augment strategy (or of mixup/cutmix); repeatable")
    group.add_argument("--augment-ratio", type=float, default=1.0,
                       help="augmentation_ratio of the --augment strategies")


def plan_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> AugmentPlan:
    """Build the plan; flag errors go through ``parser.error`` (one line, exit status 2)."""
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

    plan = AugmentPlan(label_smoothing=args.smoothing)
    names = [n.strip() for n in args.augment.split(",") if n.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        parser.error(f"--augment: unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    stray = sorted(set(overrides) - set(names) - {"mixup", "cutmix"})
    if stray:
        parser.error(f"--set names strategies that are not in --augment: {stray}")
    for name in names:
        plan.masking.append((STRATEGIES[name], {"augmentation_ratio": args.augment_ratio, **overrides.get(name, {})}))
    if args.reprob > 0:
        plan.masking.append(("RandomErasing", {
            "patch_area": (0.02, 1 / 3), "patch_aspect_ratio": (0.3, 1 / 0.3),
            "patch_count": args.recount, "fill_method": REMODES[args.remode],
            "augmentation_ratio": args.reprob, "bernoulli_mix": True,
        }))
    mixing = []
    if args.mixup > 0:
        mixing.append(("RandomMixup", {"alpha": args.mixup, **overrides.get("mixup", {})}))
    if args.cutmix > 0:
        mixing.append(("RandomCutMix", {"alpha": args.cutmix, **overrides.get("cutmix", {})}))
    for _, kwargs in mixing:
        kwargs.setdefault("augmentation_ratio", args.mixup_prob)
        kwargs.setdefault("label_smoothing", args.smoothing)
    plan.mixing = mixing
    if len(mixing) == 2:
        plan.mix_weights = [1.0 - args.mixup_switch_prob, args.mixup_switch_prob]
    elif mixing:
        plan.mix_weights = [1.0]
    return plan
