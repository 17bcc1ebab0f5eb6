#!/usr/bin/env bash
# Set up .venv (first run) and run the whole test suite, slow integration tests included.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" -x
source "$(dirname "$0")/_env.sh"
install_project dev
.venv/bin/python -m ruff check maskmix tests examples benchmarks
.venv/bin/python -m mypy  # the files of [tool.mypy] in pyproject.toml; cache in .venv/.mypy_cache
exec .venv/bin/python -m pytest -n auto --dist worksteal "$@"
