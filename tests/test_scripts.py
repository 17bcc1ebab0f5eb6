"""The example and benchmark scripts keep working (smoke runs in their quick modes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gallery_renders_every_strategy(tmp_path: Path) -> None:
    from PIL import Image

    output = tmp_path / "gallery.png"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "gallery.py"), "--size", "48", "--output", str(output)],
        capture_output=True, text=True, check=True,
    )
    assert "wrote" in proc.stdout
    with Image.open(output) as img:
        width, height = img.size
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import gallery
    finally:
        sys.path.pop(0)
    rows = 1 + len(gallery.torch_strategies(0))
    assert height > rows * 100 and width > 5 * 100  # one row per strategy, five photographs


def test_gallery_rejects_unknown_strategy(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "gallery.py"), "--strategies", "nope", "--output",
         str(tmp_path / "g.png")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "unknown strategies ['nope']" in proc.stderr


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
