"""Test-session set-up shared by every test module."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# TensorFlow and Triton (loaded lazily by torch._dynamo / torch.compile) each bundle LLVM and
# register the same LLVM command-line options: whichever is loaded second aborts the process
# ("Option ... registered more than once!"). A pytest worker collects Keras and torch tests
# together, so Triton is loaded first, before any test module can import TensorFlow.
try:
    import triton  # noqa: F401
except ImportError:  # no Triton (CPU-only torch, or no torch): nothing to conflict with
    pass


# XLA's compiled programs persist on disk, keyed by the HLO they compile (as Inductor's kernels do
# by default, under /tmp/torchinductor_$USER): a test, subprocess or xdist worker that compiles a
# graph an earlier one compiled (same layer, shapes and TensorFlow) loads it instead of spending
# seconds in XLA's CPU compiler; a changed graph is compiled afresh. The cache lives in .venv, so
# a new TensorFlow (a new environment) starts an empty one. MASKMIX_XLA_CACHE= (empty) turns it off.
_XLA_CACHE = os.environ.get("MASKMIX_XLA_CACHE", str(Path(__file__).resolve().parents[1] / ".venv" / ".xla_cache"))
if _XLA_CACHE and "tf_xla_persistent_cache_directory" not in os.environ.get("TF_XLA_FLAGS", ""):
    _flags = os.environ.get("TF_XLA_FLAGS", "")
    os.environ["TF_XLA_FLAGS"] = f"{_flags} --tf_xla_persistent_cache_directory={_XLA_CACHE}".strip()

# JAX (the Keras JAX-backend subprocesses) the same way: eager JAX compiles every op for its shapes
# and dtypes, so every compile is kept, and JAX itself evicts the least recently used past 1 GiB.
_JAX_CACHE = os.environ.get("MASKMIX_JAX_CACHE", str(Path(__file__).resolve().parents[1] / ".venv" / ".jax_cache"))
if _JAX_CACHE and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ.update(JAX_COMPILATION_CACHE_DIR=_JAX_CACHE, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", JAX_COMPILATION_CACHE_MAX_SIZE=str(2**30))

#: Past this size the cache drops its least recently used programs (a new graph per code change adds
#: a few MiB: the whole suite's graphs take ~0.5 GiB).
_XLA_CACHE_MAX_BYTES = 2 * 2**30


def pytest_sessionstart(session: pytest.Session) -> None:
    """Trim the XLA cache, once per run (in the controller, before any worker starts)."""
    if not _XLA_CACHE or os.environ.get("PYTEST_XDIST_WORKER") or not os.path.isdir(_XLA_CACHE):
        return
    entries = [(max(e.stat().st_atime, e.stat().st_mtime), e.stat().st_size, e.path)
               for e in os.scandir(_XLA_CACHE) if e.is_file()]
    total = sum(size for _, size, _ in entries)
    if total <= _XLA_CACHE_MAX_BYTES:
        return
    for _, size, path in sorted(entries):  # least recently used first, down to half the limit
        if total <= _XLA_CACHE_MAX_BYTES // 2:
            break
        os.remove(path)
        total -= size


def _module_fixture_files(items: list[pytest.Item]) -> set[str]:
    """The test files whose tests share a fixture of module scope defined in the file itself."""
    files = set()
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        info = getattr(item, "_fixtureinfo", None)
        for defs in (info.name2fixturedefs.values() if info is not None else ()):
            if defs and defs[-1].scope == "module" and defs[-1].baseid.split("::", 1)[0] == path:
                files.add(path)
    return files


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``scripts/test.sh``: ``-n auto --dist worksteal``), the files whose tests
    share a module-scoped fixture (a built wheel and its venv, a compiled pipeline) run first.

    ``worksteal`` hands each worker a contiguous half of the collection and an idle worker then
    takes pending tests from the back of the busiest one's queue; those files, at the head of the
    first worker's half, therefore run together on that worker and build their fixture once. At
    the tail of the collection, as they are in file order, their tests would be split between the
    workers and the fixture built on each (``--dist loadgroup`` would say this with marks, but
    it does not group with pytest 9.2, whose node ids no longer come from ``_nodeid``, which
    pytest-xdist 3.8 rewrites). Then come the tests marked ``slow`` or ``compile`` (two thirds of
    the suite's time in a sixth of its tests): started early, they are spread over the workers,
    and the tail that one worker runs while the other has nothing left to take is made of short
    tests (in file order, a 30-60 s soak or XLA test near the end of the collection could keep one
    worker busy alone for that long). Every worker sorts the same way (xdist checks that the
    collections agree); any other run keeps the files' order.
    """
    # Only for worksteal: xdist's default "load" mode hands out chunks of consecutive tests, and
    # moving files to the head would give the first worker more than its share.
    if not os.environ.get("PYTEST_XDIST_WORKER") or "worksteal" not in " ".join(config.invocation_params.args):
        return
    files = _module_fixture_files(items)
    position = {id(item): index for index, item in enumerate(items)}
    items.sort(key=lambda item: (item.nodeid.split("::", 1)[0] not in files, not _is_long(item),
                                 position[id(item)]))


def _is_long(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None or item.get_closest_marker("compile") is not None


@pytest.fixture(scope="session")
def keras_backend_output(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], str]:
    """``(backend, script) -> output``: the standard output of a script of ``tests/backend_scripts``
    run on Keras' torch or JAX backend (an ``AssertionError`` with its traceback if it failed). One
    process per backend runs all its scripts, once for all the session's workers
    (``other_backends.py``)."""
    import other_backends

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return lambda backend, script: other_backends.script_output(backend, script, shared)
