"""What the benchmark scripts record (the machine, library versions) and how they write it.

No framework is imported at module level: each script decides what it loads.
"""

from __future__ import annotations

import importlib
import json
import platform
from pathlib import Path
from typing import Any

#: The torch-side libraries the torch benchmarks record.
TORCH_LIBRARIES = ("torch", "maskmix", "torchvision", "timm", "kornia")


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def library_versions(*names: str) -> dict[str, str]:
    """Python's version and each named library's ``__version__``; libraries not installed are left out.

    The libraries are imported by name only here, so that a script decides what it loads (the
    Keras benchmark must not import torch before TensorFlow, see tests/conftest.py).
    """
    info = {"python": platform.python_version()}
    for name in names:
        try:
            info[name] = importlib.import_module(name).__version__
        except ImportError:
            pass
    return info


def header_line(device: str, versions: dict[str, str], date: str) -> str:
    """The first line of every results table: device; library versions; date."""
    return f"{device}; {', '.join(f'{k} {v}' for k, v in versions.items())}; {date}"


def write_results(result: dict[str, Any], output: Path | None, markdown: Path | None, lines: list[str]) -> None:
    """Write ``result`` as JSON to ``output`` and ``lines`` as a markdown file, where asked for."""
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text("\n".join(lines) + "\n")
