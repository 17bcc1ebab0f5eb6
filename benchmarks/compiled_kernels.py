"""What ``torch.compile`` launches for each transform on a CUDA GPU, found without a GPU.

``op_counts.py`` counts what an *eager* call launches. Under ``torch.compile`` Inductor fuses the
ops into Triton kernels, and what is left per call is: a few small kernels that draw the
per-image parameters, one or two passes over the batch, and any op Inductor cannot lower (a
"fallback", launched as its own ATen kernel). One ``clone()`` of a 256x3x224x224 float32 batch
took 0.111 ms on an H100 (session 1) and should take about 0.07 ms at an H200's bandwidth, while a
small kernel costs a few microseconds back to back (an estimate, not measured here): the compiled
target (1.3x clone) leaves room for a handful of small kernels and one pass.

This script runs Inductor's real CUDA code generation on a machine without a GPU: the transform
is traced with ``make_fx`` on fake CUDA tensors (with ``torch.compiler.is_compiling()`` true, so
the transforms take the path they take under ``torch.compile``), and ``compile_fx`` lowers and
schedules it for a simulated H200 (sm_90, 132 SMs) up to the generated Python wrapper, which is
captured before any Triton kernel is compiled. From the wrapper's ``call``:

* ``launches``: Triton kernels plus fallback/extern kernels per call;
* ``fallbacks``: the ops Inductor did not fuse (``aten.randint.low_out`` is Inductor's own seed
  draw, one per graph);
* ``estimated traffic``: the sum of Inductor's ``kernel_num_gb`` estimates over the kernels, in
  units of one ``clone()`` of the batch. Inductor counts each buffer a kernel touches once, so a
  kernel that reads the batch at two places (Mixup's partner gather) is counted as one read:
  a lower estimate; ``image loads`` (how many ``tl.load`` of the input batch the kernels hold)
  shows where that happens.

It patches private Inductor and ``torch.cuda`` functions for the whole process (run it as a
script, in its own process); they are those of torch 2.14. With another torch release the
patching may fail: the script then says so and exits with status 3.

    python benchmarks/compiled_kernels.py --markdown benchmarks/results/compiled_kernels.md \\
        --output benchmarks/results/compiled_kernels.json
    python benchmarks/compiled_kernels.py --quick   # two transforms at 8x3x32x32 (CI smoke run)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import re
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import _cases
import torch
from _machine import header_line, library_versions, write_results

import maskmix.torch  # noqa: F401  (imported before the simulated GPU is installed; the cases come from the registry)

#: The GPU the code is generated for.
SIMULATED = types.SimpleNamespace(
    name="NVIDIA H200 (simulated)", major=9, minor=0, multi_processor_count=132, total_memory=141 * 2**30,
    warp_size=32, max_threads_per_multi_processor=2048, regs_per_multiprocessor=65536,
    L2_cache_size=60 * 2**20, shared_memory_per_block_optin=227 * 1024, max_threads_per_block=1024, gcnArchName="",
)


class Captured(Exception):
    """Raised once the wrapper code is generated: nothing is compiled or run after that."""

    def __init__(self, code: str) -> None:
        super().__init__("captured")
        self.code = code


def install_simulated_gpu() -> None:
    """Make Inductor generate CUDA code without a driver (process-wide; see the module docstring)."""
    import torch._dynamo.utils as dynamo_utils
    import torch._functorch.aot_autograd as aot_autograd
    import torch._inductor.codegen.triton as triton_codegen
    import torch._inductor.compile_fx as compile_fx
    import torch._inductor.config as inductor_config
    import torch.utils._triton as torch_triton
    from torch._dynamo import device_interface
    from torch._inductor.graph import GraphLowering
    from torch._inductor.runtime import hints

    inductor_config.benchmark_kernel = True  # makes every kernel carry its kernel_num_gb estimate
    inductor_config.joint_graph_constant_folding = False  # it would build real CUDA constants

    def capture(self: Any) -> None:
        code = self.codegen()
        code = code[0] if isinstance(code, tuple) else code
        raise Captured(getattr(code, "value", code))

    GraphLowering.compile_to_module = capture
    aot_autograd.preserve_rng_state = contextlib.nullcontext
    dynamo_utils.preserve_rng_state = contextlib.nullcontext
    torch.cuda._lazy_init = lambda: None
    # Pattern libraries that Inductor traces once on real CUDA tensors (attention, matmul padding,
    # randperm + index_add): none applies to these transforms.
    for module, name in (("torch._inductor.fx_passes.fuse_attention", "_sfdp_init"),
                         ("torch._inductor.fx_passes.pad_mm", "_pad_mm_init"),
                         ("torch._inductor.fx_passes.misc_patterns", "_misc_patterns_init")):
        setattr(__import__(module, fromlist=[name]), name, lambda *args, **kwargs: None)
    compile_fx.get_cuda_device_context = lambda gm: contextlib.nullcontext()
    properties = hints.DeviceProperties(
        type="cuda", index=0, multi_processor_count=SIMULATED.multi_processor_count, cc=90, major=9,
        regs_per_multiprocessor=SIMULATED.regs_per_multiprocessor,
        max_threads_per_multi_processor=SIMULATED.max_threads_per_multi_processor,
        max_threads_per_block=SIMULATED.max_threads_per_block, warp_size=SIMULATED.warp_size,
    )
    hints.DeviceProperties.create = classmethod(lambda cls, device: properties)
    torch_triton.triton_hash_with_backend = lambda: "simulated"
    triton_codegen.triton_hash_with_backend = lambda: "simulated"
    cuda = device_interface.CudaInterface
    cuda.get_device_properties = staticmethod(lambda *args, **kwargs: SIMULATED)
    cuda.get_compute_capability = staticmethod(lambda *args, **kwargs: 90)
    cuda.is_available = staticmethod(lambda: True)
    cuda.device_count = staticmethod(lambda: 1)
    cuda.current_device = staticmethod(lambda: 0)


@contextlib.contextmanager
def cuda_present() -> Iterator[None]:
    """``torch.cuda`` answers as if the simulated GPU were there (only while Inductor compiles:
    tracing must see no GPU, or the random ops would ask the real driver for their state)."""
    answers = dict(get_device_properties=lambda *a, **k: SIMULATED, get_device_capability=lambda *a, **k: (9, 0),
                   is_available=lambda: True, device_count=lambda: 1, current_device=lambda: 0,
                   device=lambda *a, **k: contextlib.nullcontext())
    with contextlib.ExitStack() as stack:
        for name, answer in answers.items():
            stack.enter_context(mock.patch.object(torch.cuda, name, answer))
        yield


def generated_code(fn: Callable[..., Any], *inputs: torch.Tensor) -> str:
    """Inductor's CUDA wrapper code for ``fn(*inputs)`` (fake CUDA tensors), as ``torch.compile``
    would generate it."""
    from torch._inductor.compile_fx import compile_fx
    from torch.fx.experimental.proxy_tensor import make_fx

    mode = next(t.fake_mode for t in inputs if hasattr(t, "fake_mode"))
    with mode, mock.patch("torch.compiler.is_compiling", return_value=True):
        graph = make_fx(fn, tracing_mode="real")(*inputs)
        try:
            with cuda_present():
                compile_fx(graph, list(inputs))
        except Captured as done:
            return done.code
        except Exception as exc:  # Inductor wraps what the lowering raised
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, Captured):
                cause = cause.__cause__ or cause.__context__
            if isinstance(cause, Captured):
                return cause.code
            raise
    raise RuntimeError("Inductor generated no code")


def summarize(code: str, batch_bytes: int, batch_shape: tuple[int, ...]) -> dict[str, Any]:
    """Launches, fallbacks, traffic estimate and image loads of one generated wrapper."""
    call = code[code.index("    def call(self, args):"):code.index("runner = Runner(")]
    triton = re.findall(r"(triton_\w+)\.run\(", call)
    fallbacks = re.findall(r"(extern_kernels\.\w+|torch\.ops\.\w+\.\w+(?:\.\w+)?|aten\.\w+(?:\.\w+)?)\(", call)
    gigabytes = [float(g) for g in re.findall(r"'kernel_num_gb': ([0-9.e+-]+)", code)]
    # The batch is the wrapper's argument of the batch's shape (constants the trace lifted, such as
    # a cached 0-d tensor, may come before it): count the loads of it in the kernels.
    shape_text = "(" + ", ".join(map(str, batch_shape)) + ")"
    batch_arg = next((name for name, shape in re.findall(r"(arg\d+_1) = rand_strided\((\([^)]*\))", code)
                      if shape == shape_text), "arg0_1")
    image_loads = 0
    for kernel in set(triton):
        launch = re.search(rf"{kernel}\.run\(([^)]*)\)", call)
        signature = re.search(rf"def {kernel}\(([^)]*)\)", code)
        if launch is None or signature is None or batch_arg not in launch.group(1).split(", "):
            continue
        # The kernel's parameter in the position where the launch passes the batch.
        pointer = signature.group(1).split(", ")[launch.group(1).split(", ").index(batch_arg)]
        body = code[signature.end():code.find("''', device_str=", signature.end())]
        image_loads += len(re.findall(rf"tl\.load\({pointer} \+", body))
    return dict(
        launches=len(triton) + len(fallbacks),
        triton_kernels=len(triton),
        fallbacks=sorted(set(fallbacks)),
        estimated_traffic=sum(gigabytes) * 1e9 / (2 * batch_bytes),
        image_loads=image_loads,
    )


def traceable(transform: Callable[..., Any], mixes: bool, images: torch.Tensor, labels: torch.Tensor
              ) -> tuple[Any, ...]:
    """``(fn, *inputs)`` for :func:`generated_code`: ``make_fx`` wants exactly the traced arguments."""
    if mixes:
        def with_labels(images: torch.Tensor, labels: torch.Tensor) -> Any:
            return transform(images, labels)

        return with_labels, images, labels

    def images_only(images: torch.Tensor) -> Any:
        return transform(images)

    return images_only, images


def table_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"Device: {header_line(result['device'], result['versions'], result['date'])}", "",
             f"Batch {result['shape']} {result['dtype']}; code generated by Inductor for the simulated GPU, "
             "nothing run.", "",
             "| transform | launches per call | Triton kernels | not fused | estimated traffic (× clone) | "
             "loads of the batch |",
             "|---|---:|---:|---|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['name']} | {row['launches']} | {row['triton_kernels']} | "
                     f"{', '.join(row['fallbacks']) or '–'} | {row['estimated_traffic']:.2f} | {row['image_loads']} |")
    if result["failed"]:
        lines += ["", "Failed: " + "; ".join(f"{f['name']}: {f['reason']}" for f in result["failed"])]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="256x3x224x224")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "uint8"])
    parser.add_argument("--only", default="", help="comma-separated row names (default: every case)")
    parser.add_argument("--quick", action="store_true", help="clone, Cutout and CutMix at 8x3x32x32")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    shape = (8, 3, 32, 32) if args.quick else tuple(int(v) for v in args.shape.split("x"))
    dtype = getattr(torch, args.dtype)
    only = {"clone() floor", "RandomCutout", "RandomCutMix"} if args.quick else set(filter(None, args.only.split(",")))
    try:
        install_simulated_gpu()
    except (AttributeError, ImportError) as exc:
        print(f"compiled_kernels.py: this torch ({torch.__version__}) lacks what the simulation patches: {exc}",
              file=sys.stderr)
        return 3
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    with mode:
        x = torch.empty(shape, device="cuda", dtype=dtype)
        y = torch.zeros(shape[0], dtype=torch.int64, device="cuda")
    batch_bytes = x.numel() * x.element_size()
    result: dict[str, Any] = dict(
        device=SIMULATED.name, versions=library_versions("torch", "maskmix", "triton"),
        date=datetime.date.today().isoformat(), shape="x".join(map(str, shape)), dtype=args.dtype,
        rows=[], failed=[],
    )
    cases: dict[str, tuple[Callable[..., Any], bool]] = {"clone() floor": (torch.clone, False)}
    cases.update(_cases.build("torch"))
    for name, (transform, mixes) in cases.items():
        if only and name not in only:
            continue
        began = time.perf_counter()

        try:
            code = generated_code(*traceable(transform, mixes, x, y))
        except Exception as exc:  # reported in the table, the other rows still come
            result["failed"].append(dict(name=name, reason=f"{type(exc).__name__}: {str(exc)[:200]}"))
            print(f"{name}: failed: {exc}", file=sys.stderr)
            continue
        row = dict(name=name, **summarize(code, batch_bytes, tuple(x.shape)))
        result["rows"].append(row)
        print(f"{name:<36} launches {row['launches']:3d}  triton {row['triton_kernels']:3d}  "
              f"traffic {row['estimated_traffic']:5.2f}x clone  loads {row['image_loads']}  "
              f"not fused {row['fallbacks']}  ({time.perf_counter() - began:.0f} s)", flush=True)
        write_results(result, args.output, args.markdown, table_lines(result))
    write_results(result, args.output, args.markdown, table_lines(result))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
