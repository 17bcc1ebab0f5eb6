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

import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import training_cli
from augment_flags import AugmentPlan

if TYPE_CHECKING:
    import keras

# Keras (and TensorFlow, which logs several lines as it loads) is imported only once the data is
# there, so that a missing data set is reported in one clean line.

#: This example's default augmentation: maskmix's RandomErasing (black rectangles, its defaults) on
#: half of each batch, then CutMix or Mixup (timm's flags).
DEFAULT_AUGMENTATION = {"augment": "erasing", "augment_ratio": 0.5, "cutmix": 1.0, "mixup": 0.2}
#: Per-image normalisation inside the model: uint8 -> float in [0, 1], then centred.
MEAN, STD = 0.5, 0.25


def build_model(plan: AugmentPlan, image_shape: tuple[int, int, int], num_classes: int, seed: int) -> keras.Model:
    """A compact CNN (channels-last uint8 input) wrapped in a MaskMixModel configured by ``plan``."""
    import keras

    from maskmix import registry
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
    masking = [registry.implementation(name, "keras")(seed=seed + i, **kwargs)
               for i, (name, kwargs) in enumerate(plan.masking)]
    mixing = [registry.implementation(name, "keras")(num_classes=num_classes, seed=seed + 100 + i, **kwargs)
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
    parser = training_cli.training_parser(__doc__, DEFAULT_AUGMENTATION, framework="keras")
    parser.add_argument("--jit-compile", choices=["auto", "true", "false"], default="auto")
    args, plan = training_cli.parse(parser, argv)
    data = training_cli.load_data(args)
    if data is None:
        return 2
    import keras

    steps = None
    if args.fast_dev_run:
        steps = 3
    train_x = np.ascontiguousarray(data.train_images.transpose(0, 2, 3, 1))  # channels last
    test_x = np.ascontiguousarray(data.test_images.transpose(0, 2, 3, 1))
    occluded = occlude(test_x)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]

    results = {}
    for name, run_plan in training_cli.runs(args, plan).items():
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
        results[name] = training_cli.report(
            name,
            clean=float(model.evaluate(test_x, data.test_labels, verbose=0, return_dict=True)["acc"]),
            occluded=float(model.evaluate(occluded, data.test_labels, verbose=0, return_dict=True)["acc"]),
        )
    training_cli.write_metrics(args, data, results, backend=keras.backend.backend())
    return 0


if __name__ == "__main__":
    sys.exit(main())
