"""The example and benchmark scripts keep working (smoke runs in their quick modes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


#: ``--framework`` of the gallery -> the other framework's top module, which it must never import
#: (TensorFlow loaded before Triton aborts the process, see tests/conftest.py).
GALLERY_FRAMEWORKS = {"torch": "keras", "keras": "torch"}


@pytest.mark.slow
@pytest.mark.parametrize("framework", sorted(GALLERY_FRAMEWORKS))
def test_gallery_renders_every_strategy(tmp_path: Path, framework: str) -> None:
    from PIL import Image

    output = tmp_path / "gallery.png"
    script = ROOT / "examples" / "gallery.py"
    argv = [str(script), "--framework", framework, "--size", "48", "--output", str(output)]
    # Run the script as __main__, then report whether the other framework got imported.
    code = (
        f"import runpy, sys\nsys.argv = {argv!r}\nsys.path.insert(0, {str(script.parent)!r})\n"
        f"try:\n    runpy.run_path({str(script)!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        f"print('imported other:', {GALLERY_FRAMEWORKS[framework]!r} in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"strategies with {framework}" in proc.stdout and "imported other: False" in proc.stdout
    with Image.open(output) as img:
        width, height = img.size
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import gallery
    finally:
        sys.path.pop(0)
    # The originals, then one row per picture of the registry's strategies in this framework.
    rows, row_px = 1 + len(gallery.settings(framework)), 2.15 * 80
    assert rows * row_px < height < (rows + 1) * row_px and width == 5 * 2 * 80  # five photographs


@pytest.mark.parametrize("framework", sorted(GALLERY_FRAMEWORKS))
def test_gallery_rejects_unknown_strategy(tmp_path: Path, framework: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "gallery.py"), "--framework", framework, "--strategies", "nope",
         "--output", str(tmp_path / "g.png")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "unknown strategies ['nope']" in proc.stderr
    assert not (tmp_path / "g.png").exists()


@pytest.mark.slow
def test_torch_benchmark_quick_mode(tmp_path: Path) -> None:
    output, table = tmp_path / "bench.json", tmp_path / "bench.md"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_torch.py"), "--quick", "--device", "cpu",
         "--output", str(output), "--markdown", str(table)],
        capture_output=True, text=True, check=True,
    )
    result = json.loads(output.read_text())
    names = {row["name"] for row in result["rows"]}
    assert "clone() floor" in names and "RandomCutout" in names and "RandomMixup" in names
    assert any(name.startswith("timm") for name in names) and any(name.startswith("torchvision") for name in names)
    assert all(row["seconds"] > 0 for row in result["rows"])
    assert table.read_text().startswith("Device:")


@pytest.mark.slow
def test_keras_benchmark_quick_mode(tmp_path: Path) -> None:
    output, table = tmp_path / "bench.json", tmp_path / "bench.md"
    script = ROOT / "benchmarks" / "bench_keras.py"
    # Two of ours and one of Keras' layers (every maskmix layer's XLA compile is a test of its own:
    # tests/contracts/test_keras_conventions.py::test_xla_jit_compile).
    argv = [str(script), "--quick", "--device", "cpu", "--only", "RandomCutout,RandomCutMix,keras CutMix",
            "--output", str(output), "--markdown", str(table)]
    # Run the script as __main__, then report whether torch got imported (it must not be: TensorFlow
    # loaded before Triton aborts the process, see tests/conftest.py).
    code = (
        f"import runpy, sys\nsys.argv = {argv!r}\nsys.path.insert(0, {str(script.parent)!r})\n"
        f"try:\n    runpy.run_path({str(script)!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('imported torch:', 'torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "imported torch: False" in proc.stdout
    result = json.loads(output.read_text())
    assert result["backend"] == "tensorflow" and {"keras", "tensorflow", "maskmix"} <= set(result["versions"])
    cases = {(row["name"], row["mode"], row["dtype"]) for row in result["rows"]}
    for name in ("x + 0 floor (copy)", "RandomCutout", "RandomCutMix"):
        for mode in ("eager", "xla"):
            assert {(name, mode, "float32"), (name, mode, "uint8")} <= cases, (name, mode)
    assert {name for name, _, _ in cases} == {"x + 0 floor (copy)", "RandomCutout", "RandomCutMix", "keras CutMix"}
    # The maskmix layers compile under XLA; only Keras' own layers may be skipped.
    assert all(s["name"].startswith("keras ") for s in result["skipped"]), result["skipped"]
    assert all(row["seconds"] > 0 for row in result["rows"])
    assert table.read_text().startswith("Device:") and "| xla |" in table.read_text()


@pytest.mark.slow
def test_cpu_targets_quick_mode(tmp_path: Path) -> None:
    output, table = tmp_path / "targets.json", tmp_path / "targets.md"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cpu_targets.py"), "--quick", "--output", str(output),
         "--markdown", str(table)],
        capture_output=True, text=True, check=True,
    )
    rows = json.loads(output.read_text())["rows"]
    assert {row["target"] for row in rows} >= {"timm", "torchvision"}
    assert all(row["ours_s"] > 0 and row["peer_s"] > 0 and row["ratio"] > 0 for row in rows)
    assert "RandomCutMix vs torchvision CutMix (batched)" in table.read_text()
    assert json.loads(output.read_text())["allocator"] in table.read_text()


_MMAPPED_BYTES = """
import ctypes, sys
sys.path.insert(0, sys.argv[1])
import torch
from _machine import steady_allocator
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                     "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[2] == "steady":
    print(steady_allocator())
before = libc.mallinfo2().hblkhd
buffers = [torch.empty(3 * 2**20 // 4) for _ in range(4)]  # 256x3x32x32 float32: 3 MiB each
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_steady_allocator_keeps_batch_sized_buffers_off_mmap() -> None:
    # By default glibc maps each 3 MiB buffer afresh (and unmaps it when freed: page faults on every
    # call, the bimodal timings); after steady_allocator() they come from the heap and are reused.
    def mmapped(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", _MMAPPED_BYTES, str(ROOT / "benchmarks"), mode],
                             capture_output=True, text=True, check=True).stdout.split("\n")
        return out[0], int(out[-2])
    assert mmapped("default")[1] >= 4 * 3 * 2**20  # the four buffers, mapped one by one
    said, count = mmapped("steady")
    assert count == 0 and said.startswith("glibc allocator: freed buffers up to 32 MiB kept")


@pytest.mark.slow
def test_train_step_benchmark_quick_mode(tmp_path: Path) -> None:
    output = tmp_path / "step.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_train_step.py"), "--quick", "--device", "cpu",
         "--output", str(output)],
        capture_output=True, text=True, check=True,
    )
    result = json.loads(output.read_text())
    assert result["shape"] == [8, 3, 32, 32] and result["model"] == "small_cnn"
    assert 0 < result["augment_share"] < 1 and result["step_ms"] > 0
    assert set(result["pipelines"]) == {"eager"}


def test_compiled_kernels_quick_mode(tmp_path: Path) -> None:
    """Inductor's CUDA code for a simulated H200, generated on the CPU: the clone is one kernel of
    one clone's traffic; CutMix fuses its random draws (no randint fallback, which an explicit
    generator=None used to cause) and its pass reads the batch twice (self and partner)."""
    output, table = tmp_path / "kernels.json", tmp_path / "kernels.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compiled_kernels.py"), "--quick", "--output", str(output),
         "--markdown", str(table)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {row["name"]: row for row in json.loads(output.read_text())["rows"]}
    clone = rows["clone() floor"]
    assert (clone["launches"], clone["image_loads"], clone["fallbacks"]) == (1, 1, [])
    assert clone["estimated_traffic"] == pytest.approx(1.0)
    cutmix = rows["RandomCutMix"]
    assert cutmix["fallbacks"] == ["aten.randint.low_out"]  # Inductor's own seeds, nothing else
    # 4 launches where it was measured (AMD EPYC host, 2026-12-04), 5 on this session's Intel Xeon host
    # with the same torch 2.14.1 at the merge base too: Inductor's kernel split depends on the host.
    assert cutmix["launches"] <= 5 and cutmix["image_loads"] == 2
    assert rows["RandomCutout"]["image_loads"] == 1
    assert "| RandomCutMix | " in table.read_text()


@pytest.mark.slow
def test_op_counts_quick_mode(tmp_path: Path) -> None:
    output, table = tmp_path / "ops.json", tmp_path / "ops.md"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "op_counts.py"), "--quick", "--output", str(output),
         "--markdown", str(table)],
        capture_output=True, text=True, check=True,
    )
    rows = {row["name"]: row for row in json.loads(output.read_text())["rows"]}
    ours = [row for row in rows.values() if row["counted_on"] == "meta"]
    assert len(ours) >= 10 and all(row["host_reads"] == 0 and row["kernels"] > 0 for row in ours)
    # Memory traffic: every transform reads and writes the batch at least once (one clone); a
    # masking transform with a constant fill is one where over it, little more.
    assert all(row["traffic_clones"]["float32"] >= 1.0 and row["traffic_clones"]["uint8"] >= 1.0 for row in ours)
    assert rows["RandomCutout"]["traffic_clones"]["float32"] < 1.2
    assert all("float32" in row["traffic_clones"] for row in rows.values())
    # Batched: the same launches at any batch size; timm's per-image loop launches more.
    assert all(row["kernels_large"] == row["kernels"] for row in ours)
    timm_loop = rows["timm RandomErasing (per-image loop)"]
    assert timm_loop["kernels_large"] > timm_loop["kernels"]
    assert rows["torchvision CutMix (one box per batch)"]["host_reads"] > 0
    assert table.read_text().startswith("Host:")


def test_cuda_checks_catalogue_runs_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The configurations cuda_checks.py checks on a GPU exist and run (so that a GPU session does
    not fail on a stale name); without CUDA its main() says so and succeeds."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import cuda_checks
    import torch

    from maskmix import registry

    x, y = torch.rand(6, 3, 20, 24), torch.randint(0, 10, (6,))
    catalogue = cuda_checks.catalogue()
    torch_specs = registry.specs(framework="torch")
    # Every variant of every torch strategy, and one partial selection of each.
    variants = {name: spec for spec in torch_specs for name in spec.variants}
    assert set(catalogue) == set(variants) | {f"{spec.flag}_selected" for spec in torch_specs}
    assert {factory().__class__.__name__ for factory in catalogue.values()} == {spec.name for spec in torch_specs}
    for name, factory in catalogue.items():
        transform = factory()
        out = cuda_checks.call(transform, x, y)
        images = out[0] if isinstance(out, tuple) else out
        assert images.shape == x.shape and images.dtype == x.dtype, name
        config = variants[name].variants[name].config if name in variants else {}
        assert isinstance(out, tuple) == transform.spec.mixes_images(config), name
        assert cuda_checks.gets_compiled(name) == (name in variants), name
    if not torch.cuda.is_available():
        monkeypatch.setattr(sys, "argv", ["cuda_checks.py"])
        assert cuda_checks.main() == 0


@pytest.mark.slow
def test_torch_benchmark_budget_and_skip(tmp_path: Path) -> None:
    """--budget 0 times only the floors and lists every other case as not timed (the files are
    still written); --skip leaves a shape/dtype pair out. gpu_session.sh relies on both."""
    output, table = tmp_path / "bench.json", tmp_path / "bench.md"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_torch.py"), "--quick", "--device", "cpu", "--budget", "0",
         "--skip", "8x3x32x32:uint8", "--compile", "--no-peers", "--output", str(output), "--markdown", str(table)],
        capture_output=True, text=True, check=True,
    )
    result = json.loads(output.read_text())
    assert [(row["name"], row["dtype"]) for row in result["rows"]] == [("clone() floor", "torch.float32")]
    skipped = {(s["name"], s["mode"]) for s in result["skipped"]}
    assert ("RandomCutMix", "eager") in skipped and ("RandomCutMix", "compile") in skipped
    assert all(s["reason"] == "time budget spent" and s["dtype"] == "torch.float32" for s in result["skipped"])
    assert "Not timed: RandomCutout (eager, torch.float32): time budget spent" in table.read_text()


def test_torch_benchmark_table_has_device_columns_for_cuda_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The device/host columns that only a CUDA run fills are laid out right (no GPU needed)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_torch

    base = dict(shape=[256, 3, 224, 224], dtype="torch.float32", mode="eager")
    result = {"device": "GPU", "versions": {"torch": "x"}, "date": "2026-11-30", "note": "", "skipped": [], "rows": [
        dict(base, name="clone() floor", seconds=1e-4, ratio=1.0, device_seconds=1e-4, host_seconds=2e-5,
             device_ratio=1.0),
        dict(base, name="RandomCutMix", seconds=1e-3, ratio=10.0, device_seconds=3e-4, host_seconds=9e-4,
             device_ratio=3.0),
        dict(base, name="RandomCutMix", mode="compile", seconds=2e-4, ratio=2.0),
    ]}
    lines = bench_torch.table_lines(result)
    header = next(line for line in lines if line.startswith("| shape"))
    assert header.endswith("| device ms | host ms | device × clone |")
    assert "| RandomCutMix | eager | 1.000 | 256000 | 10.00 | 0.300 | 0.900 | 3.00 |" in lines[-2]
    assert lines[-1].endswith("| compile | 0.200 | 1280000 | 2.00 | – | – | – |")
    assert all(line.count("|") == header.count("|") for line in lines if line.startswith("| ("))


def test_gpu_session_runs_in_priority_order_within_its_budget(tmp_path: Path) -> None:
    """benchmarks/gpu_session.sh with a stand-in for python: the steps run in order, each under its
    share of the budget; a step that would start with too little left is skipped; the output
    directory holds just the log and the results archive (the device tool returns at most 8 files)."""
    calls = tmp_path / "calls.txt"
    fake_python = tmp_path / "python"
    fake_python.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {calls}\n'
        'case "$1" in -c) exit 1 ;; esac\n'  # the probes for kornia, pytest and xdist: none installed
        'for a in "$@"; do case "$a" in */cuda_checks.json) echo "{}" > "$a" ;; esac; done\n'
        'case "$*" in *bench_torch*) sleep 3 ;; esac\n'
    )
    fake_python.chmod(0o755)
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_session.sh"), str(out), "64"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake_python)}, capture_output=True, text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["results.tar.gz", "session.log"]
    log = (out / "session.log").read_text()
    runs = [line for line in calls.read_text().splitlines() if line.startswith("benchmarks/")]
    assert [line.split()[0] for line in runs] == [
        "benchmarks/cuda_checks.py", "benchmarks/bench_torch.py", "benchmarks/bench_train_step.py",
        "benchmarks/bench_torch.py",
    ]
    assert "--compile no" in runs[0] and "--compile --graphs" in runs[1] and "--skip 256x3x224x224:float32" in runs[3]
    assert "--precision bf16 --compile" in runs[2]
    assert "=== checks: up to 6" in log and "=== bench224: up to 6" in log
    # After the two 3-second benchmarks fewer than the 60 s the compile checks need are left;
    # pytest is not installed (its probe fails), so that step is not even listed.
    assert "=== compile: skipped" in log and "pytest" not in log
    assert "=== done after" in log
    listing = subprocess.run(["tar", "tzf", str(out / "results.tar.gz")], capture_output=True, text=True,
                             check=True).stdout
    assert "cuda_checks.json" in listing and "environment.txt" in listing

    # A second call for what the first left out: only the named steps run.
    calls.unlink()
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_session.sh"), str(tmp_path / "again"), "200"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake_python), "STEPS": "compile,train"},
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    runs = [line for line in calls.read_text().splitlines() if line.startswith("benchmarks/")]
    assert [line.split()[0] for line in runs] == ["benchmarks/bench_train_step.py", "benchmarks/cuda_checks.py"]
    assert "--compile only" in runs[1]


def test_traffic_counter_counts_bytes_read_and_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """One clone is 1.0 by definition; a sum of two batches reads two and writes one (1.5); a
    broadcast (expanded) operand counts its distinct elements once; allocating writes nothing."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import torch
    from op_counts import traffic

    x = torch.empty(4, 3, 8, 8, device="meta")
    assert traffic(x.clone, x)[0] == 1.0
    assert traffic(lambda: x + x, x)[0] == 1.5
    mask = torch.empty(4, 1, 8, 8, dtype=torch.bool, device="meta")  # broadcast over the channels
    fill = torch.empty(1, 3, 1, 1, device="meta")
    clone_bytes = 2 * x.numel() * 4
    # x in and the output: one clone; the mask once per pixel (1 byte); the 3 fill values.
    expected = 1.0 + (mask.numel() + 3 * 4) / clone_bytes
    assert traffic(lambda: torch.where(mask, x, fill), x)[0] == expected
    assert traffic(lambda: torch.where(mask.expand(4, 3, 8, 8), x, fill), x)[0] == expected
    assert traffic(lambda: torch.empty_like(x), x)[0] == 0.0


class _FakeGPU:
    """A GPU timeline for bench_torch's CUDA-only timing code: kernels queue behind each other and
    run while the host goes on; an event records when the queue reaches it."""

    def __init__(self) -> None:
        import time

        self.clock = time.perf_counter
        self.busy_until = self.clock()

    def launch(self, seconds: float) -> None:
        self.busy_until = max(self.busy_until, self.clock()) + seconds

    def synchronize(self) -> None:
        while self.clock() < self.busy_until:
            pass

    def event_class(self) -> type:
        gpu = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                self.at = 0.0

            def record(self) -> None:
                gpu.launch(0.0)
                self.at = gpu.busy_until

            def synchronize(self) -> None:
                while gpu.clock() < self.at:
                    pass

            def elapsed_time(self, end: Event) -> float:
                return (end.at - self.at) * 1e3

        return Event


def test_device_and_host_time_on_a_simulated_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA-only split of an eager call into device time (its kernels back to back, the host's
    launches hidden behind a sleeping GPU) and host time, run against a simulated GPU: a call that
    enqueues three 50 us kernels in 400 us of host time takes 150 us of device time; a call that
    waits for the GPU cannot be split (None)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_torch
    import torch

    gpu = _FakeGPU()
    monkeypatch.setattr(torch.cuda, "synchronize", gpu.synchronize)
    monkeypatch.setattr(torch.cuda, "Event", gpu.event_class())
    monkeypatch.setattr(torch.cuda, "_sleep", lambda cycles: gpu.launch(cycles / 1e9))

    def busy(seconds: float) -> None:
        end = gpu.clock() + seconds
        while gpu.clock() < end:
            pass

    def call() -> None:
        for _ in range(3):
            busy(400e-6 / 3)
            gpu.launch(50e-6)

    device, host = bench_torch.device_and_host_time(call, repeats=5, warmup=1)
    assert device == pytest.approx(150e-6, rel=0.05)
    assert 400e-6 <= host < 2e-3

    def waits_for_the_gpu() -> None:
        gpu.launch(10e-6)
        gpu.synchronize()

    assert bench_torch.device_and_host_time(waits_for_the_gpu, repeats=3, warmup=1) is None
