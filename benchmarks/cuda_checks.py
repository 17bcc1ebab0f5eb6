"""CUDA-only checks: correctness on the GPU, no host syncs, CUDA-graph capture, torch.compile.

Run on a machine with a CUDA GPU:  python benchmarks/cuda_checks.py --output cuda_checks.json
Each check prints PASS/FAIL; the exit status is non-zero if any check fails.

The configurations checked come from the strategy registry (:func:`catalogue`: every torch
strategy's named variants, plus a partial selection of each), so a strategy added there is
checked here too; the checks about one strategy's semantics (:func:`check_label_assert`) stay.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import torch

import maskmix.torch as mm
from maskmix import registry
from maskmix.registry import StrategySpec

#: Classes given to every mixing configuration.
NUM_CLASSES = 10


def _factory(spec: StrategySpec, config: Mapping[str, Any]) -> Callable[[], mm.MaskMixTransform]:
    """Builds the torch class of ``spec`` with ``config`` (and ``num_classes`` when it mixes)."""
    extra = {"num_classes": NUM_CLASSES} if spec.mixes_images(config) else {}
    return lambda: registry.implementation(spec.name, "torch")(**config, **extra)


def catalogue() -> dict[str, Callable[[], mm.MaskMixTransform]]:
    """``{name: factory}`` of every configuration checked, from the registry's torch strategies:

    * every named variant of every strategy (``spec.variants``: ``cutout``, ``cutout_partial``,
      ``cutmix_variant``, ``thumbnail_mix``, ...), each augmenting every image of the batch;
    * ``<flag>_selected``: the strategy's first variant with ``augmentation_ratio=0.5``, so that
      the partial-selection paths are checked too: an exact count of images for the strategies
      at even positions of the registry, a Bernoulli draw per image at odd ones. These are not
      compiled (:func:`gets_compiled`): one compilation per variant is what the GPU session allows.
    """
    out: dict[str, Callable[[], mm.MaskMixTransform]] = {}
    for position, spec in enumerate(registry.specs(framework="torch")):
        for name, variant in spec.variants.items():
            out[name] = _factory(spec, variant.config)
        if spec.variants:
            first = next(iter(spec.variants.values())).config
            selected = {**first, "augmentation_ratio": 0.5, "bernoulli_mix": position % 2 == 1}
            out[f"{spec.flag or spec.name}_selected"] = _factory(spec, selected)
    return out


def gets_compiled(name: str) -> bool:
    """Whether the configuration ``name`` of :func:`catalogue` gets :func:`check_compile`."""
    return not name.endswith("_selected")


def mixes(transform: mm.MaskMixTransform) -> bool:
    """Whether ``transform`` takes ``(images, labels)`` (its spec's family or mixing switch)."""
    # torch.compile wraps modules in an OptimizedModule; look at the original.
    original = getattr(transform, "_orig_mod", transform)
    spec = original.spec
    switch = {spec.mixing_switch: getattr(original, spec.mixing_switch)} if spec.mixing_switch else {}
    return spec.mixes_images(switch)


def call(transform: mm.MaskMixTransform, x: torch.Tensor, y: torch.Tensor):
    # Cut-Thumbnail is a pasting transform that mixes only under its switch (mix_images).
    return transform(x, y) if mixes(transform) else transform(x)


def check_no_sync(name: str, factory, x, y) -> None:
    t = factory()
    call(t, x, y)  # warm-up outside of the sync check (lazy CUDA init, caching allocator)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            call(t, x, y)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def check_graph_capture(name: str, factory, x, y) -> None:
    t = factory()
    static_x = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            call(t, static_x, y)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = call(t, static_x, y)
    outs = []
    for _ in range(2):
        graph.replay()
        torch.cuda.synchronize()
        out = static_out[0] if isinstance(static_out, tuple) else static_out
        outs.append(out.clone())
    # Replays draw new random numbers (Philox offsets advance), so two replays differ.
    assert outs[0].shape == x.shape
    assert not torch.equal(outs[0], outs[1]), "graph replays should draw new random parameters"


def check_compile(name: str, factory, x, y) -> None:
    t = factory()
    compiled = torch.compile(t, fullgraph=True)
    out = call(compiled, x, y)
    out = out[0] if isinstance(out, tuple) else out
    assert out.shape == x.shape and out.dtype == x.dtype


#: Strategies that blend images: their pixels are sums the GPU may round differently.
BLENDING = frozenset({"RandomMixup", "RandomMixupOrCutMix"})


def check_matches_cpu_semantics(name: str, factory, x, y) -> None:
    """Draw params on CUDA, apply them on CUDA and on CPU: the pixel results must agree exactly."""
    t = factory()
    params = t.make_params([x])
    out_gpu = t.transform(x, params)
    cpu_params = {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
    out_cpu = t.transform(x.cpu(), cpu_params)
    resamples = "resize_method" in t.spec.param_names  # Cut-Blur, Cut-Thumbnail
    if x.dtype == torch.uint8 and resamples:
        # Resampling matmuls round differently on the GPU: at most one uint8 level.
        assert (out_gpu.cpu().int() - out_cpu.int()).abs().max() <= 1
    elif "mean_per_channel" in repr(t) or t.spec.name in BLENDING or resamples:
        torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=1e-5, atol=1e-5)
    else:
        assert torch.equal(out_gpu.cpu(), out_cpu), "CUDA and CPU results differ for the same parameters"


def check_label_assert(device: torch.device) -> None:
    """Out-of-range class indices on CUDA trip a device-side assertion, without a host sync."""
    import subprocess

    code = (
        "import torch, maskmix.torch as mm\n"
        "x = torch.rand(4, 3, 8, 8, device='cuda'); y = torch.tensor([0, 1, 2, 99], device='cuda')\n"
        "torch.cuda.set_sync_debug_mode('error')\n"
        "out = mm.RandomCutMix(num_classes=10)(x, y)\n"
        "torch.cuda.set_sync_debug_mode('default')\n"
        "torch.cuda.synchronize()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "class indices must lie in" in (proc.stderr + proc.stdout), proc.stderr[-2000:]


def write_summary(results: dict[str, str], output: str | None) -> dict[str, object]:
    summary = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": results}
    if output:
        with open(output, "w") as fh:
            json.dump(summary, fh, indent=2)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=None, help="JSON file, rewritten after every check")
    parser.add_argument("--compile", choices=["yes", "no", "only"], default="yes",
                        help="run the torch.compile checks (float32) too, not at all, or alone; they take "
                             "most of the time (one compilation per configuration)")
    parser.add_argument("--dtypes", default="float32,bfloat16,uint8")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device; nothing to check")
        return 0
    device = torch.device("cuda")
    results: dict[str, str] = {}
    transforms = catalogue()
    checks = {"no": (check_no_sync, check_graph_capture, check_matches_cpu_semantics),
              "yes": (check_no_sync, check_graph_capture, check_compile, check_matches_cpu_semantics),
              "only": (check_compile,)}[args.compile]
    for dtype in (getattr(torch, name.strip()) for name in args.dtypes.split(",")):
        x = (torch.rand(64, 3, 96, 128, device=device) * (255 if dtype == torch.uint8 else 1)).to(dtype)
        y = torch.randint(0, 10, (64,), device=device)
        for name, factory in transforms.items():
            for check in checks:
                key = f"{check.__name__}[{name}, {dtype}]"
                if check is check_compile and (dtype != torch.float32 or not gets_compiled(name)):
                    continue
                try:
                    check(name, factory, x, y)
                    results[key] = "PASS"
                except Exception as exc:  # report every failure, keep going
                    results[key] = f"FAIL: {type(exc).__name__}: {str(exc)[:300]}"
                    traceback.print_exc()
                print(f"{results[key][:4]}  {key}", flush=True)
                write_summary(results, args.output)
    if args.compile != "only":
        try:
            check_label_assert(device)
            results["check_label_assert"] = "PASS"
        except Exception as exc:
            results["check_label_assert"] = f"FAIL: {exc}"
    for key, value in results.items():
        if value != "PASS":
            print(f"FAIL  {key}  {value}")
    summary = write_summary(results, args.output)
    failed = [k for k, v in results.items() if v != "PASS"]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed on {summary['device']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
