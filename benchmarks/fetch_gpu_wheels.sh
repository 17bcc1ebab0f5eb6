#!/usr/bin/env bash
# Download the wheels the lent GPU machine lacks (Kornia, for the peer rows of bench_torch) into
# .whl/ (git-ignored), for its Python 3.12 on x86-64. benchmarks/gpu_session.sh installs them when
# the device tool carries ".whl". Kornia's other needs (torch, numpy) are there already.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
rm -f .whl/*.whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d .whl "kornia==${KORNIA_VERSION:-0.9.0}" "kornia_rs==${KORNIA_RS_VERSION:-0.2.0}"
ls -l .whl
