"""CUDA-only checks: correctness on the GPU, no host syncs, CUDA-graph capture, torch.compile.

Run on a machine with a CUDA GPU:  python benchmarks/cuda_checks.py --output cuda_checks.json
Each check prints PASS/FAIL; the exit status is non-zero if any check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable

import torch

import maskmix.torch as mm

MASKING: dict[str, Callable[[], mm.MaskMixTransform]] = {
    "RandomCutout": lambda: mm.RandomCutout(augmentation_ratio=0.5),
    "RandomCutout(partial)": lambda: mm.RandomCutout(allow_partial=True, patch_area=0.25),
    "RandomErasing": lambda: mm.RandomErasing(patch_count=(1, 3), fill_method="noise"),
    "RandomErasing(bernoulli)": lambda: mm.RandomErasing(augmentation_ratio=0.5, bernoulli_mix=True),
    "RandomHideAndSeek": lambda: mm.RandomHideAndSeek(grid_size=[4, 8, (8, 16)], erased_patches=(1, 8)),
    "RandomGridMask": lambda: mm.RandomGridMask(fill_method="mean_per_channel"),
    "RandomGridMask(rotated)": lambda: mm.RandomGridMask(rotation=360),
}
MIXING: dict[str, Callable[[], mm.MaskMixTransform]] = {
    "RandomCutMix": lambda: mm.RandomCutMix(num_classes=10),
    "RandomCutMix(variant)": lambda: mm.RandomCutMix(
        num_classes=10, patch_area=(0.1, 0.5), patch_aspect_ratio=(0.5, 2)
    ),
    "RandomMixup": lambda: mm.RandomMixup(num_classes=10, alpha=0.4),
}


PASTING: dict[str, Callable[[], mm.MaskMixTransform]] = {
    "RandomCutBlur": lambda: mm.RandomCutBlur(),
    "RandomCutPaste(jitter)": lambda: mm.RandomCutPaste(color_jitter=0.5),
    "RandomCutSwap": lambda: mm.RandomCutSwap(augmentation_ratio=0.5),
    "RandomCutThumbnail": lambda: mm.RandomCutThumbnail(),
    "RandomCutThumbnail(mix)": lambda: mm.RandomCutThumbnail(mix_images=True, num_classes=10),
}


def call(transform: mm.MaskMixTransform, x: torch.Tensor, y: torch.Tensor):
    # torch.compile wraps modules in an OptimizedModule; look at the original to pick the call.
    # Cut-Thumbnail is a mixing transform whose plain variant takes images alone.
    original = getattr(transform, "_orig_mod", transform)
    if getattr(original, "mix_images", isinstance(original, mm.MixingTransform)):
        return transform(x, y)
    return transform(x)


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


def check_matches_cpu_semantics(name: str, factory, x, y) -> None:
    """Draw params on CUDA, apply them on CUDA and on CPU: the pixel results must agree exactly."""
    t = factory()
    params = t.make_params([x])
    out_gpu = t.transform(x, params)
    cpu_params = {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
    out_cpu = t.transform(x.cpu(), cpu_params)
    if x.dtype == torch.uint8 and ("Blur" in name or "Thumbnail" in name):
        # Resampling matmuls round differently on the GPU: at most one uint8 level.
        assert (out_gpu.cpu().int() - out_cpu.int()).abs().max() <= 1
    elif "mean_per_channel" in repr(t) or "Mixup" in name or "Blur" in name or "Thumbnail" in name:
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
    transforms = {**MASKING, **MIXING, **PASTING}
    checks = {"no": (check_no_sync, check_graph_capture, check_matches_cpu_semantics),
              "yes": (check_no_sync, check_graph_capture, check_compile, check_matches_cpu_semantics),
              "only": (check_compile,)}[args.compile]
    for dtype in (getattr(torch, name.strip()) for name in args.dtypes.split(",")):
        x = (torch.rand(64, 3, 96, 128, device=device) * (255 if dtype == torch.uint8 else 1)).to(dtype)
        y = torch.randint(0, 10, (64,), device=device)
        for name, factory in transforms.items():
            for check in checks:
                key = f"{check.__name__}[{name}, {dtype}]"
                if check is check_compile and dtype != torch.float32:
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
