#!/usr/bin/env bash
# Everything that needs a CUDA GPU, as ONE time-boxed command for a lent GPU machine (a session gets
# about 15 minutes of device time in all, machine start included; torch, torchvision, timm and
# lightning are installed there). Run from the repository root:
#
#   benchmarks/gpu_session.sh OUTDIR [BUDGET_SECONDS]     # default budget 420 s
#   STEPS=compile,pytest benchmarks/gpu_session.sh OUTDIR 300   # only the named steps (a second call)
#
# The steps run in order of importance; each gets what is left of the budget (capped by its own
# share) and a step that would start with too little left is skipped, so the command ends inside
# the budget and a rerun has time. What it writes (two files, within the device tool's limits):
#
#   OUTDIR/session.log       everything printed, as it happens (kept even if the command is killed)
#   OUTDIR/results.tar.gz    the JSON/markdown files of the steps that ran, repacked after each step
#
# Steps (names for STEPS):
#   1. checks     cuda_checks.py without torch.compile (no host syncs, CUDA-graph capture, CPU
#                 semantics; float32, bfloat16, uint8) and the device-side label assertion
#   2. bench224   bench_torch at 256x3x224x224 float32: eager (wall, device and host time), CUDA
#                 graph, compile, compile+cudagraphs, and the peers
#   3. train      bench_train_step: ResNet-50, 256x3x224x224, channels_last, bf16 autocast; the
#                 callback's pipeline eager and compiled (compile=True), with its first-call seconds
#   4. benchrest  bench_torch eager + CUDA graph at 256x3x224x224 bfloat16/uint8 and 1024x3x32x32
#   5. compile    cuda_checks.py --compile only (float32, every configuration)
#   6. pytest     the CUDA variants of tests/test_determinism.py (eager and compiled)
#
# Kornia is not installed on the lent machine: `benchmarks/fetch_gpu_wheels.sh` puts its wheels in
# .whl/ (git-ignored); pass `carry: [".whl"]` to the device tool and they are installed first.
# Afterwards: unpack results.tar.gz, copy its files to benchmarks/results/ with the GPU's name in
# the file names (e.g. torch_cuda_h200.md), and quote them in benchmarks/results/README.md.
set -uo pipefail
out=${1:?usage: gpu_session.sh OUTDIR [BUDGET_SECONDS]}
budget=${2:-420}
mkdir -p "$out"
work=$(mktemp -d)
log="$out/session.log"
began=$SECONDS
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

if compgen -G ".whl/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

pack() { tar -czf "$out/results.tar.gz.tmp" -C "$work" . && mv "$out/results.tar.gz.tmp" "$out/results.tar.gz"; }

# step NAME SHARE MIN_SECONDS COMMAND...: run COMMAND with at most SHARE seconds (and no more than
# what is left of the budget); skip it when fewer than MIN_SECONDS are left.
step() {
  local name=$1 share=$2 min=$3 left rc
  shift 3
  if [ -n "${STEPS:-}" ] && [[ ",$STEPS," != *",${name%%-*},"* ]]; then
    return  # not asked for
  fi
  left=$((budget - (SECONDS - began)))
  if [ "$left" -lt "$min" ]; then
    echo "=== $name: skipped, ${left}s of the budget left (needs ${min}s)" | tee -a "$log"
    return
  fi
  [ "$share" -gt "$left" ] && share=$left
  echo "=== $name: up to ${share}s (t=$((SECONDS - began))s)" | tee -a "$log"
  timeout --kill-after=10 "$share" "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - began))s in all" | tee -a "$log"
  pack
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || echo "nvidia-smi failed"
  "$python" -c "import sys, torch, torchvision; print(sys.version.split()[0], torch.__version__, torchvision.__version__)"
  "$python" -c "import kornia; print('kornia', kornia.__version__)" 2>/dev/null || echo "kornia not installed"
} 2>&1 | tee -a "$log" | tee "$work/environment.txt"

step checks 90 30 "$python" benchmarks/cuda_checks.py --compile no --output "$work/cuda_checks.json"
step bench224 200 60 "$python" benchmarks/bench_torch.py --device cuda --compile --graphs \
  --shapes 256x3x224x224 --dtypes float32 --repeats 20 --budget 170 \
  --output "$work/torch_cuda_224_fp32.json" --markdown "$work/torch_cuda_224_fp32.md"
step train 90 45 "$python" benchmarks/bench_train_step.py --device cuda --precision bf16 --compile \
  --repeats 15 --output "$work/train_step_cuda_bf16.json"
step benchrest 110 40 "$python" benchmarks/bench_torch.py --device cuda --graphs \
  --shapes 256x3x224x224,1024x3x32x32 --dtypes float32,bfloat16,uint8 --skip 256x3x224x224:float32 \
  --repeats 10 --budget 95 --output "$work/torch_cuda_rest.json" --markdown "$work/torch_cuda_rest.md"
step compile 150 60 "$python" benchmarks/cuda_checks.py --compile only --dtypes float32 \
  --output "$work/cuda_checks_compile.json"
if "$python" -c "import pytest" 2>/dev/null; then
  workers=$("$python" -c "import xdist" 2>/dev/null && echo "-n 4" || echo "")
  # shellcheck disable=SC2086
  step pytest 120 45 "$python" -m pytest -q -p no:cacheprovider $workers -k cuda tests/test_determinism.py
fi
pack
echo "=== done after $((SECONDS - began))s of a ${budget}s budget" | tee -a "$log"
