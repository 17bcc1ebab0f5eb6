"""The share of a training step that maskmix's augmentation takes (docs/performance.md; target: < 1%).

One process, one batch, timings (median of repeats, synchronised on CUDA), for the eager
pipeline and, with ``--compile``, for the compiled one (``MaskMixPipeline(compile=True)``) too:

* ``step``: forward, backward and optimiser step of the model on a clean batch;
* ``augment``: the MaskMixCallback pipeline alone (``maskmix.torch.MaskMixPipeline``: random
  erasing on half of the images, then CutMix, soft labels), exactly what the callback runs in
  ``on_after_batch_transfer``;
* ``augmented step``: both, as a training step with the callback runs them.

The share is ``augment / augmented step``. GPU: torchvision's ResNet-50 on 256x3x224x224
(channels_last images and model, bf16 autocast with ``--precision bf16``); CPU: a small CNN on
256x3x32x32 (a ResNet step at 224 px takes seconds on a CPU). The compiled pipeline's first call
(its compilation, the warm-up a run pays once) is reported in seconds.

    python benchmarks/bench_train_step.py --device cuda --precision bf16 --compile \
        --output benchmarks/results/train_step_cuda.json
    python benchmarks/bench_train_step.py --quick            # CI smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from _machine import cpu_name
from torch import nn

import maskmix
from maskmix.torch import MaskMixPipeline, RandomCutMix, RandomErasing

NUM_CLASSES = 1000


def timed(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    """Median seconds per call (CUDA: synchronised before and after each call)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def small_cnn(num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(128, num_classes),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=None, help="image side (default 224 on CUDA, 32 on CPU)")
    parser.add_argument("--model", choices=["resnet50", "resnet18", "small_cnn"], default=None,
                        help="default resnet50 on CUDA, small_cnn on CPU")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: autocast for the model step (the images stay float32)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="also time the compiled pipeline (compile=True)")
    parser.add_argument("--quick", action="store_true", help="tiny batch, few repeats (smoke run)")
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    size = args.size or (224 if on_gpu else 32)
    model_name = args.model or ("resnet50" if on_gpu else "small_cnn")
    batch, repeats, warmup = args.batch, args.repeats, 3
    if args.quick:
        batch, size, repeats, warmup, model_name = 8, 32, 3, 1, "small_cnn"

    torch.manual_seed(0)
    if model_name.startswith("resnet"):
        from torchvision import models

        model = getattr(models, model_name)(num_classes=NUM_CLASSES)
    else:
        model = small_cnn(NUM_CLASSES)
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, NUM_CLASSES, (batch,), device=device)

    def pipeline_of(compiled: bool) -> MaskMixPipeline:
        return MaskMixPipeline(
            transforms=[RandomErasing(augmentation_ratio=0.5, bernoulli_mix=True)],
            mix=RandomCutMix(),
            num_classes=NUM_CLASSES,
            seed=0,
            compile=compiled,
        )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast:
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    clean = timed(lambda: step(images, labels), device, repeats, warmup)
    rows: dict[str, dict[str, float]] = {}
    for compiled in (False, True) if args.compile else (False,):
        pipeline = pipeline_of(compiled)
        started = time.perf_counter()
        pipeline((images, labels))  # the compiled pipeline's first call compiles it
        if on_gpu:
            torch.cuda.synchronize()
        first_call = time.perf_counter() - started

        def augment(pipeline: MaskMixPipeline = pipeline) -> tuple[torch.Tensor, torch.Tensor]:
            return pipeline((images, labels))

        aug = timed(augment, device, repeats, warmup)
        both = timed(lambda augment=augment: step(*augment()), device, repeats, warmup)
        rows["compiled" if compiled else "eager"] = {
            "first_call_s": first_call, "augment_ms": aug * 1e3, "augmented_step_ms": both * 1e3,
            "augment_share": aug / both,
        }
    device_name = torch.cuda.get_device_name(device) if on_gpu else f"{cpu_name()} ({os.cpu_count()} logical CPUs)"
    result = {
        "device": device_name,
        "date": datetime.date.today().isoformat(),
        "versions": {"torch": torch.__version__, "maskmix": maskmix.__version__, "python": platform.python_version()},
        "model": model_name,
        "shape": [batch, 3, size, size],
        "precision": args.precision,
        "augmentation": "MaskMixPipeline: RandomErasing(ratio 0.5, Bernoulli) then RandomCutMix, soft labels",
        "memory_format": "channels_last",
        "step_ms": clean * 1e3,
        # The eager figures at the top level, as before; every path under "pipelines".
        **rows["eager"],
        "pipelines": rows,
    }
    print(f"{device_name}: {model_name} on {batch}x3x{size}x{size} ({args.precision}, channels_last)")
    print(f"  training step          {clean * 1e3:9.3f} ms")
    for path, row in rows.items():
        print(f"  {path}: first call {row['first_call_s']:.2f} s")
        print(f"    augmentation alone   {row['augment_ms']:9.3f} ms")
        print(f"    augmented step       {row['augmented_step_ms']:9.3f} ms")
        print(f"    augmentation share   {100 * row['augment_share']:9.2f} %  (target < 1%)")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2))
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
