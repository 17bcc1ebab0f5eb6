"""Test-session set-up shared by every test module."""

from __future__ import annotations

import os

import pytest

# TensorFlow and Triton (loaded lazily by torch._dynamo / torch.compile) each bundle LLVM and
# register the same LLVM command-line options: whichever is loaded second aborts the process
# ("Option ... registered more than once!"). A pytest worker collects Keras and torch tests
# together, so Triton is loaded first, before any test module can import TensorFlow.
try:
    import triton  # noqa: F401
except ImportError:  # no Triton (CPU-only torch, or no torch): nothing to conflict with
    pass


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
