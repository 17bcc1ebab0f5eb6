"""Kernel launches and host reads per call: what an eager call costs on a GPU, counted anywhere.

In eager mode on a GPU, a call of an augmentation costs mostly kernel launches: each launch takes
some microseconds of host time (Python, dispatcher, driver), while one pass over a 256x3x224x224
float32 batch takes ~0.1 ms of an H100. A host read (``.item()``, ``bool(t)``, ``nonzero``)
is worse: the host waits for the GPU to drain. Both are counted here with a
``TorchDispatchMode``, which needs no GPU:

* ours run on the ``meta`` device, which takes exactly the code path of an accelerator (a CPU
  tensor takes a few CPU-only shortcuts) and raises on any host read, so their reads are 0 by
  construction;
* peers (torchvision, timm, Kornia) read values on the host while sampling and cannot run on
  ``meta``; they are counted on CPU tensors, where every ``.item()``-like read is an
  ``aten::_local_scalar_dense``.

Kernels are counted at two batch sizes (``--batch`` and ``--large-batch``): a per-image Python
loop launches more kernels the larger the batch; a batched transform launches the same number.
Next to the counts: the host time per call on the small CPU batch (``--batch``x3x32x32 float32,
eager), where the pixel work is small and the figure is mostly the fixed per-call overhead. The
machine may be shared, so every transform (ours and the peers') is timed in the same rounds, in
a rotating order, each block of calls right between blocks of torchvision's ``RandomErasing``
and ``CutMix``; each of ours is reported with the median over rounds of its time divided by the
peer's time next to it, beside the issue's target for its family: masking at most 1x torchvision's
``RandomErasing``, mixing at most 1x torchvision's ``CutMix``, pasting at most 2x ``RandomErasing``.
Last, the peak memory of one call (:class:`PeakMemory`, on ``meta`` for ours): the most bytes its
tensors hold at one time, in units of the batch's bytes, what an accelerator must have free in the
training step; the launch-budget test keeps every variant within a budget of it.

    python benchmarks/op_counts.py --markdown benchmarks/results/op_counts.md \\
        --output benchmarks/results/op_counts.json
"""

from __future__ import annotations

import argparse
import collections
import datetime
import functools
import math
import os
import statistics
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _cases
import torch
from _machine import TORCH_LIBRARIES, cpu_name, header_line, library_versions, steady_allocator, write_results
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from maskmix import registry

#: ATen ops that only make a new view or alias of a tensor: no kernel runs.
VIEW_OPS = frozenset({
    "_reshape_alias", "_unsafe_view", "alias", "as_strided", "detach", "expand", "lift_fresh", "narrow", "permute",
    "reshape", "select", "slice", "split", "squeeze", "t", "transpose", "unbind", "unsqueeze", "view",
})
#: ATen ops that copy a tensor's value to the host (on a GPU: a synchronisation).
HOST_READ_OPS = frozenset({"_local_scalar_dense", "nonzero", "_assert_scalar"})


class KernelCounter(TorchDispatchMode):
    """Counts, while active, the ATen ops that run a kernel (everything but views) and host reads."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket.__name__
        if name not in VIEW_OPS:
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def kernels(self) -> int:
        """Ops that launch a kernel (host reads excluded)."""
        return sum(n for name, n in self.ops.items() if name not in HOST_READ_OPS)

    @property
    def host_reads(self) -> int:
        return sum(n for name, n in self.ops.items() if name in HOST_READ_OPS)


def call(transform: Callable[..., Any], x: torch.Tensor, y: torch.Tensor, mixes: bool) -> Any:
    """Call a maskmix transform, with labels when it mixes (``_cases.build`` says which do)."""
    return transform(x, y) if mixes else transform(x)


#: Ops that allocate without reading or writing: no memory traffic.
ALLOCATING_OPS = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})


def touched_bytes(t: torch.Tensor) -> int:
    """Bytes of the distinct elements of ``t``: a broadcast (stride-0) dimension counts once."""
    return t.element_size() * math.prod(n for n, stride in zip(t.shape, t.stride(), strict=True) if stride != 0)


class TrafficCounter(TorchDispatchMode):
    """Sums the bytes every kernel reads and writes (its tensor inputs and outputs), views excluded.

    A device-independent estimate of what bounds an eager call on a bandwidth-bound GPU:
    ``bytes / (2 x batch bytes)`` is the call's traffic in units of one ``clone()`` of the batch
    (which reads and writes it once). Each tensor counts its distinct elements once per kernel
    (a broadcast operand once, not once per use). Kernels that read part of an input (a gather
    of a few rows) are counted as reading all of it, so the figure leans high for those; for the
    elementwise and whole-batch kernels the transforms launch it is what DRAM must move.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.by_op: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if name in VIEW_OPS or name in HOST_READ_OPS or name in ALLOCATING_OPS:
            return result
        inputs = [t for t in tree_flatten((args, {k: v for k, v in kwargs.items() if k != "out"}))[0]
                  if isinstance(t, torch.Tensor)]
        outputs = [t for t in tree_flatten(result)[0] if isinstance(t, torch.Tensor)]
        moved = sum(touched_bytes(t) for t in (*inputs, *outputs))
        self.bytes += moved
        self.by_op[name] += moved
        return result


def traffic(fn: Callable[[], Any], batch: torch.Tensor) -> tuple[float, dict[str, float]]:
    """Memory traffic of one call of ``fn`` in units of one ``clone()`` of ``batch``, and the
    largest contributions by op (after one uncounted call)."""
    fn()
    with TrafficCounter() as counter:
        fn()
    clone = 2 * touched_bytes(batch)
    return counter.bytes / clone, {k: round(v / clone, 2) for k, v in counter.by_op.most_common(4)}


class PeakMemory(TorchDispatchMode):
    """The largest number of bytes the tensors made by the ops it sees hold at one time.

    Each op output whose storage is new (not one of the op's inputs') is counted from the op on
    until every tensor that shares its storage (the output and the views later made of it, which
    pass through the mode too) has been freed. Works on the ``meta`` device, where nothing is
    allocated: what a call would need of an accelerator's memory beyond its input. Memory a
    kernel uses inside itself (a sort's scratch space) is not seen, nor what autograd holds.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._bytes: dict[int, int] = {}  # storage -> bytes, while any tensor of it lives
        self._holders: collections.Counter[int] = collections.Counter()

    def _release(self, storage: int) -> None:
        self._holders[storage] -= 1
        if self._holders[storage] == 0:
            del self._holders[storage]
            self.live -= self._bytes.pop(storage)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        inputs = {t.untyped_storage()._cdata for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for t in tree_flatten(result)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()._cdata
            if storage not in self._bytes:
                if storage in inputs:
                    continue  # written in place, or a view of a tensor made before the mode
                self._bytes[storage] = t.untyped_storage().nbytes()
                self.live += self._bytes[storage]
                self.peak = max(self.peak, self.live)
            self._holders[storage] += 1
            weakref.finalize(t, self._release, storage)
        return result


def peak_memory(fn: Callable[[], Any], batch: torch.Tensor) -> float:
    """The peak bytes one call of ``fn`` allocates beyond its inputs, in units of ``batch``'s bytes
    (after one uncounted call: constants kept between calls are not counted)."""
    fn()
    with PeakMemory() as memory:
        out = fn()
    del out
    return memory.peak / max(batch.untyped_storage().nbytes(), 1)


def count(fn: Callable[[], Any]) -> KernelCounter:
    """Ops of one call of ``fn``, after one uncounted call (lazy set-up)."""
    fn()
    with KernelCounter() as counter:
        fn()
    return counter


def host_times(fns: dict[str, Callable[[], Any]], peers: tuple[str, ...], repeats: int,
               calls: int = 10) -> tuple[dict[str, list[float]], dict[tuple[str, str], list[float]]]:
    """Seconds per call of each of ``fns`` in each of ``repeats`` rounds, and per-round ratios.

    A round times every function over ``calls`` calls, in an order rotated by one each round,
    each one right between blocks of the ``peers`` (named in ``fns``): ``ratios[(name, peer)]``
    holds the function's time over the peer's block timed next to it, so that on a shared
    machine whose load changes from second to second each ratio compares like with like.
    """
    def block(fn: Callable[[], Any]) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls

    for fn in fns.values():
        block(fn)
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[tuple[str, str], list[float]] = {(name, peer): [] for name in names for peer in peers}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            before = {peer: block(fns[peer]) for peer in peers}
            seconds = block(fns[name])
            samples[name].append(seconds)
            for peer in peers:
                ratios[(name, peer)].append(seconds / min(before[peer], block(fns[peer])))
    return samples, ratios


#: The issue's host-time targets per family: (peer row, at most this multiple of its time).
FAMILY_TARGETS = {
    "masking": ("torchvision RandomErasing (one box per batch)", 1.0),
    "mixing": ("torchvision CutMix (one box per batch)", 1.0),
    "pasting": ("torchvision RandomErasing (one box per batch)", 2.0),
}
ERASING_PEER, CUTMIX_PEER = FAMILY_TARGETS["masking"][0], FAMILY_TARGETS["mixing"][0]


def minimal_per_image_cutout(images: torch.Tensor, side: int) -> torch.Tensor:
    """The floor of a per-image eager erase: one ``side x side`` black square per image, placed
    uniformly inside, in the fewest plain torch ops (one draw, row and column tests, one product),
    with no validation, no selection, no fills, no parameters kept and no dtype or layout care.
    What maskmix's Cutout does per call, stripped to its kernels: how far the library's own
    plumbing is from what the eager per-image work needs."""
    batch, _, height, width = images.shape
    corners = torch.randint(0, min(height, width) - side + 1, (batch, 2, 1), device=images.device)
    positions = torch.arange(max(height, width), device=images.device)
    outside = (positions < corners) | (positions >= corners + side)
    keep = outside[:, 0, :height, None] | outside[:, 1, None, :width]
    return images * keep[:, None]


@functools.lru_cache(maxsize=8)
def _floor_constants(height: int, width: int, area: tuple[float, float] = (0.0, 0.0),
                     aspect: tuple[float, float] = (1.0, 1.0)) -> tuple[torch.Tensor, ...]:
    """What the floor rows keep between calls, as maskmix keeps its constants (float64): the image
    sides ``(H, W)`` and ``(H + 1, W + 1)``, the pixel positions ``0 .. max(H, W) - 1``, and for
    Random Erasing the affine map of two uniforms to ``[area in pixels, log(r) / 2]`` and the
    signs that make ``+-log(r) / 2``."""
    half_low, half_high = math.log(aspect[0]) / 2, math.log(aspect[1]) / 2
    pixels = height * width

    def f64(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64)

    return (f64([height, width]), f64([height + 1, width + 1]), torch.arange(max(height, width), dtype=torch.float64),
            f64([area[0] * pixels, half_low]), f64([(area[1] - area[0]) * pixels, half_high - half_low]),
            f64([1.0, -1.0]))


def minimal_per_image_erasing(images: torch.Tensor, area: tuple[float, float] = (0.05, 0.3),
                              aspect: tuple[float, float] = (0.3, 3.0)) -> torch.Tensor:
    """The floor of a per-image eager Random Erasing: one black rectangle per image of Erasing's
    law where every candidate fits (area uniform in ``area``, aspect ratio ``r`` log-uniform in
    ``aspect``, ``h = round(sqrt(a H W r))``, ``w = round(sqrt(a H W / r))``; at 32x32 with the
    defaults every size lies in ``[1, 32]``), placed uniformly inside, from one draw of four
    uniforms per image, in 16 plain torch ops (constants kept between calls); no validation, no
    selection, no fills, no parameters kept. How far the eager per-image work alone is from
    torchvision's one box per batch."""
    batch, _, height, width = images.shape
    _, ends, positions, offset, scale, signs = _floor_constants(height, width, area, aspect)
    u = torch.rand(batch, 2, 2, dtype=torch.float64)  # [area, aspect] and [row, column] per image
    drawn = torch.addcmul(offset, scale, u[:, 0])  # [area in pixels, log(r) / 2]
    sizes = (drawn[:, 1:] * signs).exp_().mul_(drawn[:, :1].sqrt()).round_()
    starts = (u[:, 1] * (ends - sizes)).floor_()
    outside = (positions < starts[..., None]) | (positions >= (starts + sizes)[..., None])
    keep = outside[:, 0, :height, None] | outside[:, 1, None, :width]
    return images * keep[:, None]


def minimal_per_image_cutmix(images: torch.Tensor, labels: torch.Tensor, num_classes: int
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The floor of a per-image eager CutMix: each image takes a box of the official law (``lam``
    uniform, the box ``sqrt(1 - lam)`` of each side around a uniform centre, clipped) from its
    neighbour in the batch (one roll), and the labels are mixed by the box's exact area, in plain
    torch ops (constants kept between calls); no validation, no selection, no parameters kept."""
    batch, _, height, width = images.shape
    dims, _, positions, *_ = _floor_constants(height, width)
    u = torch.rand(batch, 3, dtype=torch.float64)  # lam, centre row, centre column
    half = ((1 - u[:, :1]).sqrt() * dims).floor_().div_(2).floor_()
    centres = (u[:, 1:] * dims).floor_()
    starts, ends = (centres - half).clamp_(min=0), torch.minimum(centres + half, dims)
    inside = (positions >= starts[..., None]) & (positions < ends[..., None])
    box = inside[:, 0, :height, None] & inside[:, 1, None, :width]
    out = torch.where(box[:, None], images.roll(1, 0), images)
    weight = ((ends - starts).prod(1) / (height * width)).to(torch.float32)[:, None]
    soft = torch.zeros(batch, num_classes).scatter_(1, labels[:, None], 1.0)
    return out, torch.lerp(soft, soft.roll(1, 0), weight)


def peers(x: torch.Tensor, y: torch.Tensor) -> dict[str, Callable[[], Any]]:
    """One call of each peer on CPU tensors, keyed '<peer> <what>'. Missing libraries are skipped."""
    from torchvision.transforms import v2

    erase = v2.RandomErasing(p=1.0, scale=(0.05, 0.3), ratio=(0.3, 3.0))
    cutmix, mixup = v2.CutMix(num_classes=_cases.NUM_CLASSES), v2.MixUp(num_classes=_cases.NUM_CLASSES)
    out: dict[str, Callable[[], Any]] = {
        "torchvision RandomErasing (one box per batch)": lambda: erase(x),
        "torchvision CutMix (one box per batch)": lambda: cutmix(x, y),
        "torchvision MixUp (one ratio per batch)": lambda: mixup(x, y),
        "floor: minimal per-image Cutout by hand (no checks)": lambda: minimal_per_image_cutout(x, x.shape[-1] // 2),
        "floor: minimal per-image Random Erasing by hand (no checks)": lambda: minimal_per_image_erasing(x),
        "floor: minimal per-image CutMix by hand (no checks)": lambda: minimal_per_image_cutmix(
            x, y, _cases.NUM_CLASSES),
    }
    try:
        from timm.data import Mixup
        from timm.data.random_erasing import RandomErasing as TimmErasing

        timm_erase = TimmErasing(probability=1.0, min_area=0.05, max_area=0.3, device="cpu")
        out["timm RandomErasing (per-image loop)"] = lambda: timm_erase(x.clone())
        for mode in ("elem", "batch"):
            mix = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, num_classes=_cases.NUM_CLASSES)
            out[f"timm Mixup/CutMix ({mode})"] = (lambda mix=mix: mix(x.clone(), y))
    except ImportError:
        pass
    try:
        import kornia.augmentation as K

        kerase, kcutmix = K.RandomErasing(scale=(0.05, 0.3), ratio=(0.3, 3.0), p=1.0), K.RandomCutMixV2(p=1.0)
        kmixup, kjigsaw = K.RandomMixUpV2(p=1.0), K.RandomJigsaw(grid=(4, 4), p=1.0)
        out["kornia RandomErasing"] = lambda: kerase(x)
        out["kornia RandomCutMixV2"] = lambda: kcutmix(x, y)
        out["kornia RandomMixUpV2"] = lambda: kmixup(x, y)
        out["kornia RandomJigsaw"] = lambda: kjigsaw(x)
    except ImportError:
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="images per call (default 8)")
    parser.add_argument("--large-batch", type=int, default=64, help="second batch size counted (default 64)")
    parser.add_argument("--repeats", type=int, default=31, help="timed rounds of 10 calls each (default 31)")
    parser.add_argument("--quick", action="store_true", help="3 timed batches (smoke run)")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--traffic-shape", default=None,
                        help="BxCxHxW of the memory-traffic columns (default 256x3x224x224, 8x3x64x64 with "
                             "--quick; peers run it on the CPU)")
    parser.add_argument("--note", default="", help="free text stored with the results")
    parser.add_argument("--output", type=Path, default=None, help="JSON results")
    parser.add_argument("--markdown", type=Path, default=None, help="markdown table")
    args = parser.parse_args(argv)
    allocator = steady_allocator()
    torch.set_num_threads(1)  # the per-call overhead, not the pixel work, is measured
    repeats = 3 if args.quick else args.repeats
    shape = (args.batch, 3, 32, 32)
    cpu_x, cpu_y = torch.rand(shape), torch.randint(0, 10, (args.batch,))
    large = (args.large_batch, *shape[1:])
    large_x, large_y = torch.rand(large), torch.randint(0, 10, (args.large_batch,))

    def meta(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.empty(n, *shape[1:], device="meta"), torch.zeros(n, dtype=torch.int64, device="meta")

    small_meta, large_meta = meta(args.batch), meta(args.large_batch)
    traffic_shape = tuple(int(n) for n in (args.traffic_shape or ("8x3x64x64" if args.quick else "256x3x224x224"))
                          .split("x"))
    traffic_batches = {
        dtype: (torch.empty(traffic_shape, dtype=dtype, device="meta"),
                torch.zeros(traffic_shape[0], dtype=torch.int64, device="meta"))
        for dtype in (torch.float32, torch.uint8)
    }
    rows = []
    timed: dict[str, Callable[[], Any]] = {}
    rows_cases = {**_cases.cases("torch"), **_cases.SAMPLING_VARIANTS}
    for name, (transform, mixes) in _cases.build("torch", rows_cases).items():
        counter = count(lambda t=transform, m=mixes: call(t, *small_meta, m))
        counter_large = count(lambda t=transform, m=mixes: call(t, *large_meta, m))
        timed[name] = lambda t=transform, m=mixes: call(t, cpu_x, cpu_y, m)
        moved = {str(dtype).removeprefix("torch."): traffic(lambda t=transform, m=mixes, b=b: call(t, *b, m), b[0])
                 for dtype, b in traffic_batches.items()}
        peaks = {str(dtype).removeprefix("torch."): peak_memory(lambda t=transform, m=mixes, b=b: call(t, *b, m), b[0])
                 for dtype, b in traffic_batches.items()}
        rows.append(dict(name=name, counted_on="meta", kernels=counter.kernels, host_reads=counter.host_reads,
                         kernels_large=counter_large.kernels, host_reads_large=counter_large.host_reads,
                         family=registry.get(rows_cases[name][0]).family, top_ops=dict(counter.ops.most_common(6)),
                         traffic_clones={k: v[0] for k, v in moved.items()}, peak_batches=peaks,
                         traffic_by_op={k: v[1] for k, v in moved.items()}))
    if not args.no_peers:
        large_peers = peers(large_x, large_y)
        traffic_x = torch.rand(traffic_shape)
        traffic_peers = peers(traffic_x, torch.randint(0, 10, (traffic_shape[0],)))
        for name, fn in peers(cpu_x, cpu_y).items():
            counter, counter_large = count(fn), count(large_peers[name])
            moved = traffic(traffic_peers[name], traffic_x)
            peak = peak_memory(traffic_peers[name], traffic_x)
            timed[name] = fn
            rows.append(dict(name=name, counted_on="cpu", kernels=counter.kernels, host_reads=counter.host_reads,
                             kernels_large=counter_large.kernels, host_reads_large=counter_large.host_reads,
                             top_ops=dict(counter.ops.most_common(6)),
                             traffic_clones={"float32": moved[0]}, traffic_by_op={"float32": moved[1]},
                             peak_batches={"float32": peak}))
    peers_timed = tuple(peer for peer in (ERASING_PEER, CUTMIX_PEER) if peer in timed)
    samples, ratios = host_times(timed, peers_timed, repeats)
    for row in rows:
        row["host_us"] = statistics.median(samples[row["name"]]) * 1e6
        row["host_us_min"] = min(samples[row["name"]]) * 1e6
        for key, peer in (("x_erasing", ERASING_PEER), ("x_cutmix", CUTMIX_PEER)):
            if peer in peers_timed:
                row[key] = statistics.median(ratios[(row["name"], peer)])
        if "family" in row and FAMILY_TARGETS[row["family"]][0] in samples:
            peer, limit = FAMILY_TARGETS[row["family"]]
            row["target"] = limit
            row["met"] = row["x_erasing" if peer == ERASING_PEER else "x_cutmix"] <= limit
    for row in rows:
        print(f"{row['name']:<50} {row['counted_on']:>5} {row['kernels']:5d} / {row['kernels_large']:5d} kernels "
              f"{row['host_reads']:3d} / {row['host_reads_large']:3d} reads {row['host_us']:9.1f} us/call "
              f"x{row.get('x_erasing', math.nan):5.2f} tv erasing x{row.get('x_cutmix', math.nan):5.2f} tv cutmix "
              f"traffic {row['traffic_clones']['float32']:5.2f}x clone", flush=True)

    result = {
        "date": datetime.date.today().isoformat(),
        "device": f"{cpu_name()} ({os.cpu_count()} logical CPUs, torch threads 1)",
        "versions": library_versions(*TORCH_LIBRARIES),
        "shape": list(shape),
        "large_shape": list(large),
        "traffic_shape": list(traffic_shape),
        "allocator": allocator,
        "note": args.note,
        "rows": rows,
    }
    lines = [f"Host: {header_line(result['device'], result['versions'], result['date'])}", "",
             f"One eager call on a Bx3x32x32 float32 batch, B = {args.batch} and {args.large_batch}. "
             "Kernels: ATen ops other than views; host reads: values copied to the host (a GPU "
             "synchronisation each). maskmix is counted on the meta device (the accelerator code path), "
             f"peers on CPU tensors. Host time: median per call at B = {args.batch} on the CPU, 1 thread "
             f"(mostly the fixed per-call overhead: the pixel work is small), every row timed in each of {repeats} "
             "rounds of 10 calls in a rotating order (median µs, and the minimum over rounds), each block right "
             "between blocks of torchvision's RandomErasing and CutMix; × tv erasing / × tv CutMix: the median "
             "over rounds of the row's time over the faster of the two peer blocks around it, and the issue's "
             "target (masking ≤ 1× RandomErasing, mixing ≤ 1× CutMix, pasting ≤ 2× RandomErasing). "
             "Memory traffic: bytes every kernel of one "
             f"call reads and writes on a {'x'.join(map(str, traffic_shape))} batch, in units of one clone() of "
             "it (what bounds an eager call's device time on a bandwidth-bound GPU, in × clone). "
             "Peak memory: the most bytes the tensors one call makes hold at one time, on the same batch, "
             "in units of the batch's bytes (the output alone is 1; what an accelerator must have free "
             "beyond the input; peers on CPU tensors). "
             f"CPU memory: {allocator}.", ""]
    if args.note:
        lines += [f"Note: {args.note}", ""]
    b, big = args.batch, args.large_batch
    lines += [f"| transform | kernels B={b} | kernels B={big} | host reads B={b} | host reads B={big} | "
              f"host µs per call B={b} (median / min) | × tv erasing | × tv CutMix | target | met | "
              "traffic × clone float32 | traffic × clone uint8 | peak × batch float32 | peak × batch uint8 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|"]

    def ratio(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.2f}" if key in row else "–"

    def target(row: dict[str, Any]) -> tuple[str, str]:
        if "target" not in row:
            return "–", "–"
        peer = "RandomErasing" if FAMILY_TARGETS[row["family"]][0] == ERASING_PEER else "CutMix"
        return f"≤ {row['target']:g}× {peer}", "yes" if row["met"] else "**no**"

    def clones(row: dict[str, Any], dtype: str, key: str = "traffic_clones") -> str:
        value = row[key].get(dtype)
        return "–" if value is None else f"{value:.2f}"

    lines += [f"| {r['name']} | {r['kernels']} | {r['kernels_large']} | {r['host_reads']} | "
              f"{r['host_reads_large']} | {r['host_us']:.0f} / {r['host_us_min']:.0f} | "
              f"{ratio(r, 'x_erasing')} | {ratio(r, 'x_cutmix')} | "
              f"{' | '.join(target(r))} | {clones(r, 'float32')} | {clones(r, 'uint8')} | "
              f"{clones(r, 'float32', 'peak_batches')} | {clones(r, 'uint8', 'peak_batches')} |"
              for r in rows]
    write_results(result, args.output, args.markdown, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
