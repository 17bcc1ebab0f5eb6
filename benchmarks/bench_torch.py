"""Speed of the maskmix torch transforms against the clone() floor and their peers, in one process.

For each strategy and batch shape/dtype: median time per call, images per second, and the ratio
to one ``clone()`` of the batch (the memory-bandwidth floor), next to the peers that exist:
torchvision v2 (batched: one region for the whole batch; per-image: a Python loop), timm
(``RandomErasing`` loops over images; ``Mixup`` in ``elem`` and ``batch`` modes), and Kornia
when installed. Modes: ``eager``; ``compile`` (``torch.compile(fullgraph=True)``, ``--compile``);
on CUDA with ``--graphs`` also ``cuda-graph`` (the eager call captured once in a
``torch.cuda.CUDAGraph`` and replayed: fresh random numbers each replay, no launch overhead) and,
with ``--compile``, ``compile+cudagraphs`` (``mode="reduce-overhead"``). In eager mode on a GPU a
call costs mostly kernel launches (see ``benchmarks/op_counts.py``); the graph modes show what
the same kernels cost without them. On CUDA each eager row also has a ``device`` time (the GPU is
kept busy while the host enqueues the call, so the call's kernels run back to back, as in a
training step where the host runs ahead) and a ``host`` time (the CPU cost of enqueueing it): the
eager wall time is about the larger of the two. ``compile`` rows get the same split (their host
time includes Dynamo's guard checks and the wrapper's launches).

    python benchmarks/bench_torch.py --device cuda --compile --graphs \
        --output benchmarks/results/torch_cuda.json --markdown benchmarks/results/torch_cuda.md
    python benchmarks/bench_torch.py --quick        # tiny shapes, a few repeats (CI smoke run)
    python benchmarks/bench_torch.py --device cuda --compile --graphs --budget 240 ...  # time-boxed

Writes a markdown table (``--markdown``) and a JSON file with the device name and versions.
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
from typing import Any

import _cases
import torch
from _machine import TORCH_LIBRARIES, cpu_name, header_line, library_versions, write_results


def timed(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    """Median seconds per call, synchronising around each call on CUDA."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def cuda_graphed(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` captured in a CUDA graph (after warm-up on a side stream); returns the replay.

    The default CUDA generator supports capture: each replay advances its offset, so every
    replay draws new parameters, as an eager call would.
    """
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def ours(x: torch.Tensor, y: torch.Tensor) -> dict[str, Callable[[], object]]:
    """One call of each configuration of ``_cases.cases("torch")`` on ``x`` (with ``y`` for the mixing ones)."""
    return {name: (lambda t=t: t(x, y)) if mixes else (lambda t=t: t(x))
            for name, (t, mixes) in _cases.build("torch").items()}


def peers(x: torch.Tensor, y: torch.Tensor) -> dict[str, Callable[[], object]]:
    """Peer implementations, keyed '<peer>: <what>'. Missing libraries are skipped."""
    from torchvision.transforms import v2

    out: dict[str, Callable[[], object]] = {}
    erase = v2.RandomErasing(p=1.0, scale=(0.05, 0.3), ratio=(0.3, 3.0))
    out["torchvision RandomErasing (batched: one box per batch)"] = lambda: erase(x)
    out["torchvision RandomErasing (per-image loop)"] = lambda: torch.stack([erase(img) for img in x])
    if x.dtype.is_floating_point:
        cutmix = v2.CutMix(num_classes=_cases.NUM_CLASSES)
        mixup = v2.MixUp(num_classes=_cases.NUM_CLASSES)
        out["torchvision CutMix (batched)"] = lambda: cutmix(x, y)
        out["torchvision MixUp (batched)"] = lambda: mixup(x, y)
    try:
        from timm.data import Mixup
        from timm.data.random_erasing import RandomErasing as TimmErasing

        timm_erase = TimmErasing(probability=1.0, min_area=0.05, max_area=0.3, device=str(x.device))
        out["timm RandomErasing (per-image loop)"] = lambda: timm_erase(x.clone())
        if x.dtype.is_floating_point and x.shape[0] % 2 == 0:
            for mode in ("elem", "batch"):
                mix = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, num_classes=_cases.NUM_CLASSES,
                            label_smoothing=0.0)
                out[f"timm Mixup/CutMix ({mode})"] = (lambda mix=mix: mix(x.clone(), y))
    except ImportError:
        pass
    try:
        import kornia.augmentation as K

        if x.dtype.is_floating_point:
            kerase = K.RandomErasing(scale=(0.05, 0.3), ratio=(0.3, 3.0), p=1.0)
            out["kornia RandomErasing"] = lambda: kerase(x)
            kcutmix = K.RandomCutMixV2(p=1.0)
            out["kornia RandomCutMixV2"] = lambda: kcutmix(x, y)
            kmixup = K.RandomMixUpV2(p=1.0)
            out["kornia RandomMixUpV2"] = lambda: kmixup(x, y)
            if x.shape[-1] % 4 == 0 and x.shape[-2] % 4 == 0:
                # The nearest Kornia has to CutSwap: shuffles the tiles of a 4x4 grid.
                kjigsaw = K.RandomJigsaw(grid=(4, 4), p=1.0)
                out["kornia RandomJigsaw (vs CutSwap)"] = lambda: kjigsaw(x)
    except ImportError:
        pass
    return out


def device_and_host_time(fn: Callable[[], object], repeats: int, warmup: int) -> tuple[float, float] | None:
    """CUDA: median ``(device seconds, host seconds)`` per call, with the launches hidden.

    Before each call the GPU is kept busy by ``torch.cuda._sleep`` for longer than the host takes
    to enqueue the call, so the events around the call time its kernels back to back, as in a
    training step where the host runs ahead of the GPU; the host time is the enqueueing alone (the
    CPU cost of a call). None when the host cannot run ahead (``fn`` synchronises with the host).
    """
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(10_000_000)
    end.record()
    end.synchronize()
    cycles_per_second = 10_000_000 / (start.elapsed_time(end) / 1e3)
    sleep_s, device_samples, host_samples, retried = 0.002, [], [], False
    for _ in range(4 * repeats):
        if len(device_samples) == repeats:
            break
        torch.cuda._sleep(int(sleep_s * cycles_per_second))
        start.record()
        t0 = time.perf_counter()
        fn()
        host = time.perf_counter() - t0
        end.record()
        end.synchronize()
        if host > 0.5 * sleep_s:  # the GPU may have caught up with the host: retry with a longer sleep
            if retried and host >= 0.9 * sleep_s:
                return None  # it waited out the sleep twice: the call synchronises, no run-ahead possible
            retried, sleep_s = True, 4 * host
            continue
        device_samples.append(start.elapsed_time(end) / 1e3)
        host_samples.append(host)
    if len(device_samples) < repeats:
        return None
    return statistics.median(device_samples), statistics.median(host_samples)


def table_lines(result: dict[str, Any]) -> list[str]:
    """The markdown table of ``result`` (the header line, the note, then one row per timing)."""
    lines = [f"Device: {header_line(result['device'], result['versions'], result['date'])}", ""]
    if result["note"]:
        lines += [f"Note: {result['note']}", ""]
    cuda = any("device_seconds" in r for r in result["rows"])
    extra = " device ms | host ms | device × clone |" if cuda else ""
    lines += ["| shape | dtype | transform | mode | ms | images/s | × clone |" + extra,
              "|---|---|---|---|---:|---:|---:|" + ("---:|---:|---:|" if cuda else "")]
    for r in result["rows"]:
        line = (f"| {tuple(r['shape'])} | {r['dtype'].replace('torch.', '')} | {r['name']} | {r['mode']} | "
                f"{r['seconds'] * 1e3:.3f} | {r['shape'][0] / r['seconds']:.0f} | {r['ratio']:.2f} |")
        if cuda:
            if r.get("device_seconds") is not None:
                line += (f" {r['device_seconds'] * 1e3:.3f} | {r['host_seconds'] * 1e3:.3f} | "
                         f"{r['device_ratio']:.2f} |")
            else:
                line += " – | – | – |"
        lines.append(line)
    if result["skipped"]:
        lines += ["", "Not timed: " + "; ".join(f"{s['name']} ({s['mode']}, {s['dtype']}): {s['reason']}"
                                              for s in result["skipped"])]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and few repeats (smoke run)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(fullgraph=True)")
    parser.add_argument("--compile-dtypes", default="float32", help="dtypes timed compiled (default float32)")
    parser.add_argument("--graphs", action="store_true",
                        help="CUDA: also time the eager call captured in a CUDA graph, and with --compile "
                             "torch.compile(mode='reduce-overhead')")
    parser.add_argument("--only", default=None, help="comma-separated names of our transforms to time (default all)")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--shapes", default=None,
                        help="comma-separated BxCxHxW shapes (default 256x3x224x224,1024x3x32x32)")
    parser.add_argument("--dtypes", default=None, help="comma-separated dtypes (default float32,bfloat16,uint8)")
    parser.add_argument("--skip", default="",
                        help="comma-separated SHAPE:DTYPE pairs not to time, e.g. 256x3x224x224:float32")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU; default torch's)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds: start no new timing after this long (the rest is listed as not timed); "
                             "the files are rewritten after every row, so a killed run leaves what it measured")
    parser.add_argument("--note", default="", help="free text stored with the results (e.g. machine load)")
    parser.add_argument("--output", type=Path, default=None, help="JSON results")
    parser.add_argument("--markdown", type=Path, default=None, help="markdown table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    began = time.perf_counter()
    device = torch.device(args.device)
    if args.quick:
        shapes, dtypes, repeats, warmup = [(8, 3, 32, 32)], [torch.float32, torch.uint8], 2, 1
    else:
        shapes = [(256, 3, 224, 224), (1024, 3, 32, 32)]
        dtypes = [torch.float32, torch.bfloat16, torch.uint8]
        repeats, warmup = args.repeats, 3
    if args.shapes:
        shapes = [tuple(int(n) for n in item.split("x")) for item in args.shapes.split(",")]
    only = set(args.only.split(",")) if args.only else None
    if args.dtypes:
        dtypes = [getattr(torch, name.strip()) for name in args.dtypes.split(",")]
    compile_dtypes = {getattr(torch, name.strip()) for name in args.compile_dtypes.split(",")}
    on_cuda = device.type == "cuda"
    if on_cuda:
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"{cpu_name()} ({os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()})"
    result: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "device": device_name,
        "versions": library_versions(*TORCH_LIBRARIES),
        "note": args.note,
        "rows": [],
        "skipped": [],
    }
    rows, skipped = result["rows"], result["skipped"]
    skip = {tuple(item.split(":")) for item in args.skip.split(",") if item}
    for shape in shapes:
        for dtype in dtypes:
            if ("x".join(map(str, shape)), str(dtype).replace("torch.", "")) in skip:
                continue
            x = (torch.rand(shape, device=device) * (255 if dtype == torch.uint8 else 1)).to(dtype)
            y = torch.randint(0, 10, (shape[0],), device=device)
            floor = timed(x.clone, device, repeats, warmup)
            rows.append(dict(shape=list(shape), dtype=str(dtype), name="clone() floor", mode="eager",
                             seconds=floor, ratio=1.0))
            floor_device = None
            if on_cuda and (split := device_and_host_time(x.clone, repeats, warmup)) is not None:
                floor_device = split[0]
                rows[-1].update(device_seconds=split[0], host_seconds=split[1], device_ratio=1.0)
            mine = {n: f for n, f in ours(x, y).items() if not only or n.split("(")[0] in only}
            # Cheapest first, so that a time budget leaves out compilations rather than peers.
            cases = [("eager", n, f) for n, f in mine.items()]
            if not args.no_peers:
                cases += [("eager", n, f) for n, f in peers(x, y).items()]
            graphs = args.graphs and on_cuda
            if graphs:
                cases += [("cuda-graph", n, lambda f=f: cuda_graphed(f)) for n, f in ours(x, y).items()
                          if n in mine]
            if args.compile and dtype in compile_dtypes:
                for name, fn in ours(x, y).items():
                    if name in mine:
                        cases.append(("compile", name, torch.compile(fn, fullgraph=True)))
                        if graphs:
                            cases.append(("compile+cudagraphs", name,
                                          torch.compile(fn, fullgraph=True, mode="reduce-overhead")))
            for mode, name, fn in cases:
                if args.budget is not None and time.perf_counter() - began > args.budget:
                    skipped.append(dict(shape=list(shape), dtype=str(dtype), name=name, mode=mode,
                                        reason="time budget spent"))
                    continue
                slow = "loop" in name and not args.quick
                row: dict[str, Any] = dict(shape=list(shape), dtype=str(dtype), name=name, mode=mode)
                try:
                    t0 = time.perf_counter()
                    if mode == "cuda-graph":
                        fn = fn()  # capture now: a failure is reported like any other
                    elif mode.startswith("compile"):
                        fn()
                        if on_cuda:
                            torch.cuda.synchronize()
                        row["first_call_seconds"] = time.perf_counter() - t0  # compilation included
                    seconds = timed(fn, device, max(3, repeats // 5) if slow else repeats, 1 if slow else warmup)
                    split = None
                    # Compiled calls too: their launches and guard checks are host time that a
                    # training step hides when the host runs ahead; the 1.3x target is about the
                    # kernels. Graph replays have next to no host cost, so wall time says it all.
                    if on_cuda and mode in ("eager", "compile") and not slow:
                        split = device_and_host_time(fn, repeats, warmup)
                except Exception as exc:  # a peer that does not support this dtype
                    reason = f"{type(exc).__name__}: {str(exc)[:160]}"
                    print(f"skip {name} {mode} {dtype}: {reason}", file=sys.stderr)
                    skipped.append(dict(shape=list(shape), dtype=str(dtype), name=name, mode=mode, reason=reason))
                    continue
                row.update(seconds=seconds, ratio=seconds / floor)
                if split is not None and floor_device is not None:
                    row.update(device_seconds=split[0], host_seconds=split[1], device_ratio=split[0] / floor_device)
                rows.append(row)
                device_part = (f"  device {split[0] * 1e3:8.3f} ms  host {split[1] * 1e3:8.3f} ms"
                               if split is not None else "")
                print(f"{shape!s:>20} {dtype!s:>15} {mode:>18} {name:<58} "
                      f"{seconds * 1e3:9.3f} ms  {shape[0] / seconds:12.0f} img/s  {seconds / floor:7.2f}x clone"
                      + device_part, flush=True)
                write_results(result, args.output, args.markdown, table_lines(result))
    write_results(result, args.output, args.markdown, table_lines(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
