"""What the benchmark scripts record (the machine, library versions) and how they write it.

No framework is imported at module level: each script decides what it loads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import json
import platform
from pathlib import Path
from typing import Any

#: The torch-side libraries the torch benchmarks record.
TORCH_LIBRARIES = ("torch", "maskmix", "torchvision", "timm", "kornia")


#: glibc's ``mallopt`` parameters (malloc.h): the trim threshold and the mmap threshold.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: The largest mmap threshold glibc accepts on 64-bit machines (``DEFAULT_MMAP_THRESHOLD_MAX``).
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def steady_allocator() -> str:
    """Keep freed CPU buffers in the process (glibc only) and say what was done, for the results.

    By default glibc returns a freed buffer of a few MiB to the system and the next allocation of
    that size faults its pages in again: on the development VM the same call then took 0.3 or
    4.8 ms in consecutive runs (torchvision's CutMix at 256x3x32x32), a bimodal noise that decides
    ratios near a target. Raising the mmap and trim thresholds makes both sides of every pair
    reuse their buffers, as torch's caching allocator does on a GPU. Elsewhere nothing changes.
    """
    name = ctypes.util.find_library("c")
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or name is None:
        return "system allocator (not glibc: unchanged)"
    libc = ctypes.CDLL(name)
    if not (libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) and libc.mallopt(_M_TRIM_THRESHOLD, 2**30)):
        return "glibc allocator (mallopt refused: unchanged)"
    return "glibc allocator: freed buffers up to 32 MiB kept in the process (mmap and trim thresholds raised)"


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
