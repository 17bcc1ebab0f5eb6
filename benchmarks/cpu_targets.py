"""The CPU speed targets of the benchmarks issue, measured as paired ratios in one process.

Each target compares one maskmix transform with one peer on the same batch. The two are timed
alternately (A, B, A, B, ...), so that a machine whose load changes during the run (a shared CI
runner) slows both sides alike; the reported ratio is the median of the per-round ratios
``time(ours) / time(peer)``, next to each side's median time.

* ``kornia``: not slower than Kornia at any shape: RandomErasing, RandomCutMix (vs
  ``RandomCutMixV2``), RandomMixup (vs ``RandomMixUpV2``), RandomCutSwap (vs ``RandomJigsaw``,
  the nearest Kornia has: it shuffles the tiles of a 4x4 grid). Target ratio <= 1.
* ``timm``: at 32x32 not slower than timm's per-image loops: RandomErasing (vs timm
  ``RandomErasing``) and RandomCutMix / RandomMixup (vs timm ``Mixup`` in ``elem`` mode, which
  draws CutMix or Mixup per image). Target ratio <= 1.
* ``torchvision``: per-image CutMix at most 1.2x torchvision's one-box-per-batch ``v2.CutMix``
  (issue 19, at 256x3x32x32 and 32x3x224x224), per-image Mixup at most 1.5x ``v2.MixUp``.

The default shapes are the issue's; ``--shapes 256x3x224x224,1024x3x32x32`` gives the earlier
rounds' rows.

    python benchmarks/cpu_targets.py --markdown benchmarks/results/cpu_targets.md \\
        --output benchmarks/results/cpu_targets.json
    python benchmarks/cpu_targets.py --quick       # tiny shapes, a few rounds (smoke run)
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _machine import TORCH_LIBRARIES, cpu_name, header_line, library_versions, steady_allocator, write_results

import maskmix.torch as mm

NUM_CLASSES = 10


def paired(ours: Callable[[], object], peer: Callable[[], object], rounds: int, warmup: int) -> dict[str, float]:
    """Alternate the two calls; medians of each side and of the per-round ratio."""
    for _ in range(warmup):
        ours()
        peer()
    a, b, ratios = [], [], []
    for i in range(rounds):
        # Swap the order every round: neither side always runs on a warm cache.
        order = ((0, ours), (1, peer)) if i % 2 == 0 else ((1, peer), (0, ours))
        spent = [0.0, 0.0]
        for side, fn in order:
            t0 = time.perf_counter()
            fn()
            spent[side] = time.perf_counter() - t0
        a.append(spent[0])
        b.append(spent[1])
        ratios.append(spent[0] / spent[1])
    return {"ours_s": statistics.median(a), "peer_s": statistics.median(b), "ratio": statistics.median(ratios)}


#: ``(target, pair name, limit on the ratio, ours, peer)``.
Pair = tuple[str, str, float, Callable[[], object], Callable[[], object]]


def targets(x: torch.Tensor, y: torch.Tensor) -> list[Pair]:
    """The pairs whose peer exists at this shape."""
    from torchvision.transforms import v2

    out: list[Pair] = []
    erasing, cutmix, mixup = mm.RandomErasing(), mm.RandomCutMix(num_classes=NUM_CLASSES), mm.RandomMixup(
        num_classes=NUM_CLASSES)
    cutswap = mm.RandomCutSwap()
    try:
        import kornia.augmentation as K

        kerase = K.RandomErasing(scale=(0.05, 0.3), ratio=(0.3, 3.0), p=1.0)
        out.append(("kornia", "RandomErasing vs kornia RandomErasing", 1.0, lambda: erasing(x), lambda: kerase(x)))
        kcutmix = K.RandomCutMixV2(p=1.0)
        out.append(("kornia", "RandomCutMix vs kornia RandomCutMixV2", 1.0,
                    lambda: cutmix(x, y), lambda: kcutmix(x, y)))
        kmixup = K.RandomMixUpV2(p=1.0)
        out.append(("kornia", "RandomMixup vs kornia RandomMixUpV2", 1.0, lambda: mixup(x, y), lambda: kmixup(x, y)))
        if x.shape[-1] % 4 == 0 and x.shape[-2] % 4 == 0:
            kjigsaw = K.RandomJigsaw(grid=(4, 4), p=1.0)
            out.append(("kornia", "RandomCutSwap vs kornia RandomJigsaw", 1.0, lambda: cutswap(x), lambda: kjigsaw(x)))
    except ImportError:
        pass
    if x.shape[-1] <= 32:
        try:
            from timm.data import Mixup
            from timm.data.random_erasing import RandomErasing as TimmErasing

            terase = TimmErasing(probability=1.0, min_area=0.05, max_area=0.3, device="cpu")
            out.append(("timm", "RandomErasing vs timm RandomErasing (loop)", 1.0,
                        lambda: erasing(x), lambda: terase(x.clone())))
            for name, ours in (("RandomCutMix", cutmix), ("RandomMixup", mixup)):
                elem = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", num_classes=NUM_CLASSES,
                             label_smoothing=0.0)
                out.append(("timm", f"{name} vs timm Mixup (elem)", 1.0,
                            lambda ours=ours: ours(x, y), lambda elem=elem: elem(x.clone(), y)))
        except ImportError:
            pass
    tv_cutmix, tv_mixup = v2.CutMix(num_classes=NUM_CLASSES), v2.MixUp(num_classes=NUM_CLASSES)
    out.append(("torchvision", "RandomCutMix vs torchvision CutMix (batched)", 1.2,
                lambda: cutmix(x, y), lambda: tv_cutmix(x, y)))
    out.append(("torchvision", "RandomMixup vs torchvision MixUp (batched)", 1.5,
                lambda: mixup(x, y), lambda: tv_mixup(x, y)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--shapes", default="256x3x32x32,32x3x224x224", help="comma-separated BxCxHxW")
    parser.add_argument("--quick", action="store_true", help="one tiny shape, 3 rounds (smoke run)")
    parser.add_argument("--note", default="", help="free text stored with the results (e.g. machine load)")
    parser.add_argument("--output", type=Path, default=None, help="JSON results")
    parser.add_argument("--markdown", type=Path, default=None, help="markdown table")
    args = parser.parse_args(argv)
    allocator = steady_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = [tuple(int(n) for n in item.split("x")) for item in args.shapes.split(",")]
    rounds, warmup = args.rounds, 3
    if args.quick:
        shapes, rounds, warmup = [(8, 3, 32, 32)], 3, 1

    torch.manual_seed(0)
    rows = []
    for shape in shapes:
        x = torch.rand(shape)
        y = torch.randint(0, NUM_CLASSES, (shape[0],))
        for target, name, limit, ours, peer in targets(x, y):
            m = paired(ours, peer, rounds, warmup)
            met = m["ratio"] <= limit
            rows.append(dict(shape=list(shape), dtype="float32", target=target, pair=name, limit=limit, met=met, **m))
            print(f"{'x'.join(map(str, shape)):>14} {name:<52} ours {m['ours_s'] * 1e3:9.2f} ms  "
                  f"peer {m['peer_s'] * 1e3:9.2f} ms  ratio {m['ratio']:5.2f} (<= {limit}) "
                  f"{'met' if met else 'MISSED'}", flush=True)
    versions = library_versions(*TORCH_LIBRARIES)
    result = {
        "date": datetime.date.today().isoformat(),
        "device": f"{cpu_name()} ({os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()})",
        "versions": versions,
        "rounds": rounds,
        "allocator": allocator,
        "note": args.note,
        "rows": rows,
    }
    lines = [f"Device: {header_line(result['device'], versions, result['date'])}", "",
             f"Paired timing, {rounds} alternating rounds; ratio = median over rounds of "
             f"time(ours) / time(peer); float32, eager; {allocator}.", ""]
    if args.note:
        lines += [f"Note: {args.note}", ""]
    lines += ["| shape | target | pair | ours ms | peer ms | ratio | limit | met |",
              "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {'×'.join(map(str, r['shape']))} | {r['target']} | {r['pair']} | "
                     f"{r['ours_s'] * 1e3:.2f} | {r['peer_s'] * 1e3:.2f} | {r['ratio']:.2f} | "
                     f"≤ {r['limit']} | {'yes' if r['met'] else '**no**'} |")
    write_results(result, args.output, args.markdown, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
