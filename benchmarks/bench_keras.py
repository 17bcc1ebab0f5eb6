"""Speed of the maskmix Keras layers against a copy floor and Keras' built-in layers, in one process.

TensorFlow backend only (the script sets ``KERAS_BACKEND=tensorflow`` before importing Keras).
For each layer and batch shape/dtype (channels-last ``B x H x W x C``): median time per call,
images per second and the ratio to the floor, one elementwise copy of the batch (``x + 0``,
eager; ``tf.identity`` does not copy in eager mode), in eager mode and under
``tf.function(jit_compile=True)`` (XLA); ``--modes`` adds ``graph`` (``tf.function`` without XLA,
as in a ``tf.data`` pipeline). Peers are Keras' own ``keras.layers.RandomErasing``,
``keras.layers.CutMix`` and ``keras.layers.MixUp``; they compute in float32 (uint8 batches come
back as float32) and CutMix/MixUp draw Beta variates through a Gamma op that XLA cannot compile,
so those rows are reported as skipped with the reason.

    python benchmarks/bench_keras.py --output benchmarks/results/keras_cpu.json \\
        --markdown benchmarks/results/keras_cpu.md
    python benchmarks/bench_keras.py --quick        # tiny shapes, 2 repeats (CI smoke run)

This script never imports torch: TensorFlow and Triton both bundle LLVM, and loading TensorFlow
before Triton in one process aborts it, so keep Keras and torch benchmarks in separate processes.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import datetime
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import _cases
import keras
import tensorflow as tf
from _machine import cpu_name, library_versions, write_results

tf.get_logger().setLevel("ERROR")  # retracing warnings: every layer gets its own tf.function

NUM_CLASSES = _cases.NUM_CLASSES
FLOOR = "x + 0 floor (copy)"


def sync(on_gpu: bool) -> None:
    """Wait for queued GPU work (CPU eager ops and tf.function calls return when done)."""
    if on_gpu:
        tf.test.experimental.sync_devices()


#: A case whose last warm-up call took longer than this (seconds) is timed at most 3 times.
SLOW_CALL_S = 1.0


def timed(fn: Callable[[], object], on_gpu: bool, repeats: int, warmup: int) -> tuple[float, float]:
    """``(first call, median of repeats)`` in seconds; the first call includes tracing/compiling."""
    t0 = time.perf_counter()
    fn()
    sync(on_gpu)
    first = last = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        t0 = time.perf_counter()
        fn()
        sync(on_gpu)
        last = time.perf_counter() - t0
    if last > SLOW_CALL_S:
        repeats = min(repeats, 3)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(on_gpu)
        samples.append(time.perf_counter() - t0)
    return first, statistics.median(samples)


def ours() -> dict[str, tuple[keras.layers.Layer, bool]]:
    """Our layers, keyed by name: ``(layer, mixes labels)``."""
    return _cases.build("keras")


def peers(value_range: tuple[float, float]) -> dict[str, tuple[keras.layers.Layer, bool]]:
    """Keras' built-in layers (``keras.layers``) that do the same job, where they exist."""
    out: dict[str, tuple[keras.layers.Layer, bool]] = {}
    if hasattr(keras.layers, "RandomErasing"):
        out["keras RandomErasing (fill 0)"] = (
            keras.layers.RandomErasing(fill_value=0.0, value_range=value_range), False)
        out["keras RandomErasing (default: normal-noise fill)"] = (
            keras.layers.RandomErasing(value_range=value_range), False)
    if hasattr(keras.layers, "CutMix"):
        out["keras CutMix"] = (keras.layers.CutMix(), True)
    if hasattr(keras.layers, "MixUp"):
        out["keras MixUp"] = (keras.layers.MixUp(), True)
    return out


def make_call(name: str, layer: keras.layers.Layer, mixes: bool) -> Callable[..., object]:
    """A function of ``(images, labels)`` that runs the layer the way it is meant to be called."""
    if not mixes:
        return lambda x, y: layer(x)
    if name.startswith("keras "):  # Keras' mixing layers: a dict with one-hot labels
        return lambda x, y: layer({"images": x, "labels": tf.one_hot(y, NUM_CLASSES)})
    return lambda x, y: layer((x, y))  # ours: (images, class indices) with num_classes


def why(exc: Exception) -> str:
    """A one-line reason for a failed case (for XLA: the ops it cannot compile)."""
    text = str(exc)
    if "unsupported operations" in text:
        ops = sorted(set(re.findall(r"on XLA_\w+_JIT: ([\w, ]+?) \(", text)))
        return f"XLA cannot compile {', '.join(ops) or 'an op of the layer'} ({type(exc).__name__})"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1].strip()[:200] if lines else ''}"


def device_name(on_gpu: bool) -> str:
    if on_gpu:
        gpu = tf.config.list_physical_devices("GPU")[0]
        return tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
    return f"{cpu_name()} ({os.cpu_count()} logical CPUs)"


def make_batch(shape: tuple[int, ...], dtype: str) -> tuple[tf.Tensor, tf.Tensor]:
    gen = tf.random.Generator.from_seed(0)
    x = gen.uniform(shape, 0.0, 1.0)
    x = tf.cast(tf.round(x * 255.0), tf.uint8) if dtype == "uint8" else tf.cast(x, dtype)
    y = gen.uniform((shape[0],), 0, NUM_CLASSES, dtype=tf.int32)
    return x, y


def bench_one(shape: tuple[int, ...], dtype: str, modes: list[str], with_peers: bool, only: list[str] | None,
              on_gpu: bool, repeats: int, warmup: int, rows: list[dict[str, object]],
              skipped: list[dict[str, object]]) -> None:
    """Time the floor and every layer on one batch shape and dtype; append to ``rows``/``skipped``."""
    x, y = make_batch(shape, dtype)
    copy_xla = tf.function(lambda a: a + tf.zeros((), a.dtype), jit_compile=True)
    _, floor = timed(lambda: x + tf.zeros((), x.dtype), on_gpu, repeats, warmup)
    rows.append(dict(shape=list(shape), dtype=dtype, name=FLOOR, mode="eager",
                     seconds=floor, first_call_seconds=None, ratio=1.0))
    if "xla" in modes:
        first, seconds = timed(lambda: copy_xla(x), on_gpu, repeats, warmup)
        rows.append(dict(shape=list(shape), dtype=dtype, name=FLOOR, mode="xla",
                         seconds=seconds, first_call_seconds=first, ratio=seconds / floor))
    layers = dict(ours())
    if with_peers:
        layers.update(peers((0.0, 255.0) if dtype == "uint8" else (0.0, 1.0)))
    for name, (layer, mixes) in layers.items():
        if only and not any(s in name for s in only):
            continue
        call = make_call(name, layer, mixes)
        for mode in modes:
            fn = call if mode == "eager" else tf.function(call, jit_compile=mode == "xla")
            try:
                first, seconds = timed(lambda fn=fn: fn(x, y), on_gpu, repeats, warmup)
            except Exception as exc:  # e.g. an op XLA cannot compile
                reason = why(exc)
                skipped.append(dict(shape=list(shape), dtype=dtype, name=name, mode=mode, reason=reason))
                print(f"skip {name} {dtype} {mode}: {reason}", file=sys.stderr)
                continue
            rows.append(dict(shape=list(shape), dtype=dtype, name=name, mode=mode,
                             seconds=seconds, first_call_seconds=first, ratio=seconds / floor))
            print(f"{'x'.join(map(str, shape)):>14} {dtype:>8} {mode:>5} {name:<50} "
                  f"{seconds * 1e3:9.3f} ms {shape[0] / seconds:11.0f} img/s "
                  f"{seconds / floor:7.2f}x floor  (first call {first:.2f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    parser.add_argument("--device", choices=["cpu", "gpu"], default="gpu" if has_gpu else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 2 repeats (smoke run)")
    parser.add_argument("--modes", default="eager,xla",
                        help="comma-separated subset of eager, xla (tf.function(jit_compile=True)), "
                             "graph (tf.function without XLA); default eager,xla")
    parser.add_argument("--no-peers", action="store_true", help="skip Keras' built-in layers")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2, help="calls before timing (the first compiles)")
    parser.add_argument("--shapes", default=None,
                        help="comma-separated BxHxWxC shapes (default 256x224x224x3,1024x32x32x3)")
    parser.add_argument("--dtypes", default=None, help="comma-separated dtypes (default float32,uint8)")
    parser.add_argument("--only", default=None, help="comma-separated substrings: time only matching layers")
    parser.add_argument("--note", default="", help="free text stored with the results (e.g. machine load)")
    parser.add_argument("--output", type=Path, default=None, help="JSON results")
    parser.add_argument("--markdown", type=Path, default=None, help="markdown table")
    args = parser.parse_args(argv)

    if keras.backend.backend() != "tensorflow":
        parser.error(f"needs the TensorFlow Keras backend; got {keras.backend.backend()!r}")
    on_gpu = args.device == "gpu"
    if on_gpu and not has_gpu:
        parser.error("--device gpu: TensorFlow sees no GPU")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := sorted(set(modes) - {"eager", "xla", "graph"}):
        parser.error(f"unknown modes {unknown}")
    if args.quick:
        shapes, dtypes, repeats, warmup = [(8, 32, 32, 3)], ["float32", "uint8"], 2, 1
    else:
        shapes, dtypes = [(256, 224, 224, 3), (1024, 32, 32, 3)], ["float32", "uint8"]
        repeats, warmup = args.repeats, args.warmup
    if args.shapes:
        shapes = [tuple(int(n) for n in item.split("x")) for item in args.shapes.split(",")]
    if args.dtypes:
        dtypes = [name.strip() for name in args.dtypes.split(",")]
    only = [s.strip() for s in args.only.split(",")] if args.only else None

    rows: list[dict[str, object]] = []
    skipped: list[dict[str, object]] = []
    with tf.device("/GPU:0" if on_gpu else "/CPU:0"):
        for shape in shapes:
            for dtype in dtypes:
                bench_one(shape, dtype, modes, not args.no_peers, only, on_gpu, repeats, warmup, rows, skipped)

    result = {
        "date": datetime.date.today().isoformat(),
        "device": device_name(on_gpu),
        "backend": keras.backend.backend(),
        "versions": library_versions("tensorflow", "keras", "maskmix"),
        "repeats": repeats,
        "warmup": warmup,
        "note": args.note,
        "floor": "one eager elementwise copy x + 0 of the batch",
        "rows": rows,
        "skipped": skipped,
    }
    write_results(result, args.output, args.markdown, markdown(result).rstrip("\n").split("\n"))
    return 0


def markdown(result: dict[str, object]) -> str:
    versions_text = ", ".join(f"{k} {v}" for k, v in result["versions"].items())  # type: ignore[union-attr]
    lines = [
        f"Device: {result['device']}; Keras backend {result['backend']}; {versions_text}; {result['date']}",
        "",
        f"Median of {result['repeats']} calls (3 for a case slower than {SLOW_CALL_S:g} s a call) after "
        f"{result['warmup']} warm-up calls; channels-last batches; `xla` = `tf.function(jit_compile=True)`; "
        "× floor = time / one eager `x + 0` copy of the batch; first call = the first warm-up call "
        "(tracing and XLA compilation included). Keras' built-in layers return float32 for uint8 input.",
    ]
    if result["note"]:
        lines += ["", f"Note: {result['note']}"]
    lines += ["", "| shape | dtype | layer | mode | ms | images/s | × floor | first call s |",
              "|---|---|---|---|---:|---:|---:|---:|"]
    for r in result["rows"]:  # type: ignore[union-attr]
        shape = "×".join(map(str, r["shape"]))
        first = "" if r["first_call_seconds"] is None else f"{r['first_call_seconds']:.2f}"
        lines.append(f"| {shape} | {r['dtype']} | {r['name']} | {r['mode']} | {r['seconds'] * 1e3:.3f} | "
                     f"{r['shape'][0] / r['seconds']:.0f} | {r['ratio']:.2f} | {first} |")
    if result["skipped"]:
        lines += ["", "Not run:", ""]
        seen = set()
        for s in result["skipped"]:  # type: ignore[union-attr]
            key = (s["name"], s["mode"], s["reason"][:80])
            if key not in seen:
                seen.add(key)
                lines.append(f"- {s['name']} ({s['mode']}): {s['reason']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
