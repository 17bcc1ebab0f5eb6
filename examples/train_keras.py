"""Train an image classifier with Keras 3 and maskmix's MaskMixModel.

``MaskMixModel``'s ``train_step`` augments each training batch (masking layers first, each image
its own region, then one mixing layer per step) and computes the loss on the mixed targets; the
integer labels and the sparse loss given to ``compile`` keep working (the loss is switched to its
soft-target counterpart in training steps). ``evaluate`` and ``predict`` see clean images.

Usage:
    python examples/train_keras.py                                         # digits, about a minute on a CPU
    python examples/train_keras.py --reprob 0.25 --mixup 0.8 --cutmix 1.0 --smoothing 0.1
    python examples/train_keras.py --augment gridmask,cutswap --set gridmask.rotation=360
    python examples/train_keras.py --compare                               # with vs without augmentation
    KERAS_BACKEND=torch python examples/train_keras.py --fast-dev-run      # any Keras backend
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets
import numpy as np
from augment_flags import AugmentPlan, add_augment_flags, plan_from_args

if TYPE_CHECKING:
    import keras

# Keras (and TensorFlow, which logs several lines as it loads) is imported only once the data is
# there, so that a missing data set is reported in one clean line.

#: This example's default augmentation (timm's flags): random erasing, then CutMix or Mixup.
DEFAULT_AUGMENTATION = {"reprob": 0.5, "remode": "const", "cutmix": 1.0, "mixup": 0.2}
#: Per-image normalisation inside the model: uint8 -> float in [0, 1], then centred.
MEAN, STD = 0.5, 0.25


def build_model(plan: AugmentPlan, image_shape: tuple[int, int, int], num_classes: int, seed: int) -> keras.Model:
    """A compact CNN (channels-last uint8 input) wrapped in a MaskMixModel configured by ``plan``."""
    import keras

    import maskmix.keras as mk
    from maskmix.callbacks import MaskMixModel

    inputs = keras.Input(image_shape, dtype="uint8")
    x = keras.layers.Rescaling(1.0 / (255.0 * STD), offset=-MEAN / STD)(inputs)
    for filters in (32, 64, 128):
        for _ in range(2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            # PyTorch's momentum: Keras' default (0.99) needs many more steps than a small data set gives.
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x) if filters < 128 else keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(num_classes)(x)
    # Each maskmix layer gets its own seed so that runs repeat exactly.
    masking = [getattr(mk, name)(seed=seed + i, **kwargs) for i, (name, kwargs) in enumerate(plan.masking)]
    mixing = [getattr(mk, name)(num_classes=num_classes, seed=seed + 100 + i, **kwargs)
              for i, (name, kwargs) in enumerate(plan.mixing)]
    return MaskMixModel(
        inputs, outputs,
        augmentations=masking,
        mix=mixing or None,
        mix_weights=plan.mix_weights if len(mixing) > 1 else None,
        num_classes=num_classes,
        # Without mixing, MaskMixModel smooths the one-hot targets itself.
        label_smoothing=0.0 if mixing else plan.label_smoothing,
        seed=seed,
    )


def occlude(images: np.ndarray, *, area: float = 0.2, seed: int = 1234) -> np.ndarray:
    """Each image with one black square of ``area`` of the image, fully inside (a fixed draw)."""
    import keras

    import maskmix.keras as mk

    return keras.ops.convert_to_numpy(mk.RandomCutout(patch_area=area, seed=seed)(images, training=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=datasets.DATASETS, default="digits")
    parser.add_argument("--data-dir", default="data", help="where CIFAR / Flowers live or are downloaded to")
    parser.add_argument("--image-size", type=int, default=64, help="side of the Flowers-102 images")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jit-compile", choices=["auto", "true", "false"], default="auto")
    parser.add_argument("--compare", action="store_true",
                        help="train without and with augmentation; report clean and occluded test accuracy")
    parser.add_argument("--fast-dev-run", action="store_true", help="a few steps on a few images (smoke test)")
    parser.add_argument("--metrics", type=Path, default=None, help="write the test accuracies to this JSON file")
    add_augment_flags(parser)
    parser.set_defaults(**DEFAULT_AUGMENTATION)
    args = parser.parse_args(argv)
    plan = plan_from_args(args, parser)

    try:
        data = datasets.load(args.dataset, args.data_dir, image_size=args.image_size)
    except datasets.DatasetUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import keras

    steps = None
    if args.fast_dev_run:
        data, args.epochs, steps = data.subset(train=4 * args.batch_size, test=64), 1, 3
    train_x = np.ascontiguousarray(data.train_images.transpose(0, 2, 3, 1))  # channels last
    test_x = np.ascontiguousarray(data.test_images.transpose(0, 2, 3, 1))
    occluded = occlude(test_x)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]

    runs = {"baseline": AugmentPlan(), "augmented": plan} if args.compare else {"augmented": plan}
    results = {}
    for name, run_plan in runs.items():
        print(f"{name}: {data.name}, {len(train_x)} training images, {args.epochs} epochs, "
              f"augmentation: {run_plan.describe()} (Keras backend: {keras.backend.backend()})", flush=True)
        keras.utils.set_random_seed(args.seed)
        model = build_model(run_plan, train_x.shape[1:], data.num_classes, args.seed)
        total_steps = args.epochs * (steps or len(train_x) // args.batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=max(total_steps, 1))
        model.compile(
            optimizer=keras.optimizers.AdamW(schedule, weight_decay=5e-4),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
            jit_compile=jit,
        )
        model.fit(train_x, data.train_labels, batch_size=args.batch_size, epochs=args.epochs,
                  steps_per_epoch=steps, validation_data=(test_x, data.test_labels),
                  verbose=2 if not args.fast_dev_run else 0)
        results[name] = {
            "clean": float(model.evaluate(test_x, data.test_labels, verbose=0, return_dict=True)["acc"]),
            "occluded": float(model.evaluate(occluded, data.test_labels, verbose=0, return_dict=True)["acc"]),
        }
        print(f"{name}: test accuracy clean {results[name]['clean']:.4f}, "
              f"occluded {results[name]['occluded']:.4f}", flush=True)
    if args.metrics is not None:
        args.metrics.parent.mkdir(parents=True, exist_ok=True)
        args.metrics.write_text(json.dumps({"dataset": data.name, "epochs": args.epochs, "seed": args.seed,
                                            "backend": keras.backend.backend(), "results": results}, indent=2))
        print(f"metrics written to {args.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
