"""Train with maskmix in a plain PyTorch loop: call the transforms on each batch yourself.

The batch is augmented on the device it trains on, after it left the loader, by a
``maskmix.torch.MaskMixPipeline`` (what the Lightning callback runs): masking transforms first
(each image its own region), then one mixing transform per batch, whose soft labels go straight
into ``F.cross_entropy``.

Usage:
    python examples/manual_loop.py                                  # digits, erasing + cutmix/mixup
    python examples/manual_loop.py --augment "" --cutmix 0 --mixup 0  # no augmentation
    python examples/manual_loop.py --augment gridmask --cutmix 1.0 --epochs 20
    python examples/manual_loop.py --compare                        # with vs without augmentation,
                                                                    # on clean and occluded test images
    python examples/manual_loop.py --dataset cifar10 --data-dir data --reprob 0.25 --mixup 0.8 --cutmix 1.0
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets
import numpy as np
import torch
import torch.nn.functional as F
import training_cli
from augment_flags import AugmentPlan
from torch_training import accuracy, build_model, build_transforms, occlude, to_input

from maskmix.torch import MaskMixPipeline

#: This example's default augmentation: maskmix's RandomErasing (black rectangles, its defaults) on
#: half of each batch, then CutMix or Mixup (timm's flags).
DEFAULT_AUGMENTATION = {"augment": "erasing", "augment_ratio": 0.5, "cutmix": 1.0, "mixup": 0.2}


def train(data: datasets.Dataset, plan: AugmentPlan, *, epochs: int, batch_size: int, lr: float, seed: int,
          device: str, max_steps: int | None = None, log: bool = True) -> torch.nn.Module:
    """Train the example model on ``data`` with the augmentations of ``plan``; return it."""
    torch.manual_seed(seed)
    channels, height, _ = data.image_shape
    model = build_model(channels, data.num_classes, height).to(device)
    masking, mixing = build_transforms(plan, data.num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps_per_epoch = max(1, len(data.train_images) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    images = torch.from_numpy(data.train_images)
    labels = torch.from_numpy(data.train_labels)
    # Masking in order, then one mixing transform per batch (chosen on the host: no device sync),
    # labels soft (B, K) rows when mixed or smoothed; seeded streams, one batch per call.
    pipeline = MaskMixPipeline(masking, mixing or None, mix_weights=plan.mix_weights if mixing else None,
                               num_classes=data.num_classes, label_smoothing=plan.label_smoothing, seed=seed)
    step = 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed + epoch))
        total, start = 0.0, time.perf_counter()
        for i in range(steps_per_epoch):
            index = order[i * batch_size : (i + 1) * batch_size]
            x, y = images[index].to(device), labels[index].to(device)
            x, y = pipeline.augment(x, y)  # on uint8, on the training device; y soft (B, K) or indices
            loss = F.cross_entropy(model(to_input(x)), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
            step += 1
            if max_steps is not None and step >= max_steps:
                return model
        if log:
            print(f"  epoch {epoch + 1:3d}/{epochs}  loss {total / steps_per_epoch:.4f}  "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = training_cli.training_parser(__doc__, DEFAULT_AUGMENTATION)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args, plan = training_cli.parse(parser, argv)
    try:
        torch.device(args.device)
    except RuntimeError as error:
        parser.error(f"--device: {error}")
    data = training_cli.load_data(args)
    if data is None:
        return 2
    max_steps = None
    if args.fast_dev_run:
        max_steps = 3

    occluded = occlude(data.test_images)
    results = {}
    for name, run_plan in training_cli.runs(args, plan).items():
        print(f"{name}: {data.name}, {len(data.train_images)} training images, {args.epochs} epochs, "
              f"augmentation: {run_plan.describe()}", flush=True)
        model = train(data, run_plan, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      seed=args.seed, device=args.device, max_steps=max_steps)
        results[name] = training_cli.report(
            name,
            clean=accuracy(model, data.test_images, data.test_labels, device=args.device),
            occluded=accuracy(model, occluded, data.test_labels, device=args.device),
        )
    training_cli.write_metrics(args, data, results)
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    sys.exit(main())
