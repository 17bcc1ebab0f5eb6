"""The command line shared by the training examples: data, schedule, comparison and reporting.

Each script adds its own flags (device, precision, XLA, ...) to the parser :func:`training_parser`
returns; :func:`load_data` turns a missing data set into one line on stderr; :func:`report`
prints a run's test accuracies and :func:`write_metrics` saves them all.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import datasets
from augment_flags import AugmentPlan, add_augment_flags, plan_from_args


def training_parser(description: str | None, default_augmentation: dict[str, Any],
                    framework: str = "torch") -> argparse.ArgumentParser:
    """A parser with the flags every training example takes and the augmentation flags of the
    strategies ``framework`` (``"torch"`` or ``"keras"``) implements."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=datasets.DATASETS, default="digits")
    parser.add_argument("--data-dir", default="data", help="where CIFAR / Flowers live or are downloaded to")
    parser.add_argument("--image-size", type=int, default=64, help="side of the Flowers-102 images")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", action="store_true",
                        help="train without and with augmentation; report clean and occluded test accuracy")
    parser.add_argument("--fast-dev-run", action="store_true", help="a few steps on a few images (smoke test)")
    parser.add_argument("--metrics", type=Path, default=None, help="write the test accuracies to this JSON file")
    add_augment_flags(parser, framework)
    # The example's own masking is the default of --augment, which timm's --reprob replaces.
    defaults = dict(default_augmentation)
    if "augment" in defaults:
        defaults["augment_default"] = defaults.pop("augment")
    parser.set_defaults(**defaults)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, AugmentPlan]:
    """The parsed flags and the augmentation plan they describe; a bad value of a shared flag is
    one line through ``parser.error`` (exit status 2), before any data loads.

    With ``--fast-dev-run`` the run is one epoch (of a few steps), and ``args.epochs`` says so.
    """
    args = parser.parse_args(argv)
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value < 1:
            parser.error(f"{flag} must be >= 1; got {value}")
    if not 0 <= args.seed < 2**32:
        parser.error(f"--seed must be in [0, 2**32); got {args.seed}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a finite number > 0; got {args.lr}")
    if args.fast_dev_run:
        args.epochs = 1
    return args, plan_from_args(args, parser)


def load_data(args: argparse.Namespace) -> datasets.Dataset | None:
    """The data set the flags name, or None after one line on stderr when it is missing (offline)."""
    try:
        data = datasets.load(args.dataset, args.data_dir, image_size=args.image_size)
    except datasets.DatasetUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    if args.fast_dev_run:
        data = data.subset(train=4 * args.batch_size, test=64)
    return data


def runs(args: argparse.Namespace, plan: AugmentPlan) -> dict[str, AugmentPlan]:
    """The models to train: the augmented one, after a baseline without augmentation under --compare."""
    return {"baseline": AugmentPlan(), "augmented": plan} if args.compare else {"augmented": plan}


def report(name: str, clean: float, occluded: float) -> dict[str, float]:
    """Print a model's test accuracies; return them as a row of the metrics file."""
    print(f"{name}: test accuracy clean {clean:.4f}, occluded {occluded:.4f}", flush=True)
    return {"clean": clean, "occluded": occluded}


def write_metrics(args: argparse.Namespace, data: datasets.Dataset, results: dict[str, dict[str, float]],
                  **extra: Any) -> None:
    """Save the accuracies of every run to ``--metrics`` (when given)."""
    if args.metrics is None:
        return
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    payload = {"dataset": data.name, "epochs": args.epochs, "seed": args.seed, **extra, "results": results}
    args.metrics.write_text(json.dumps(payload, indent=2))
    print(f"metrics written to {args.metrics}")
