#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in parts that each fit one 10-minute command of a lent GPU
# machine (torch, torchvision, timm, lightning installed there; run from the repository root):
#
#   benchmarks/gpu_session.sh checks OUTDIR   # cuda_checks.py (no host syncs, CUDA-graph capture,
#                                             # torch.compile, CPU semantics) and the CUDA variants
#                                             # of tests/test_determinism.py and the meta-path tests
#   benchmarks/gpu_session.sh bench224 OUTDIR # bench_torch at 256x3x224x224: eager, compile,
#                                             # CUDA graph, compile+cudagraphs, peers
#   benchmarks/gpu_session.sh bench32 OUTDIR  # the same at 1024x3x32x32
#   benchmarks/gpu_session.sh train OUTDIR    # bench_train_step: ResNet-18, 256x3x224x224, fp32 and bf16
#
# Results land in OUTDIR (JSON + markdown); copy them to benchmarks/results/ with the GPU's name in
# the file names (e.g. torch_cuda_h100.md) and quote them in benchmarks/results/README.md.
set -euo pipefail
part=${1:?usage: gpu_session.sh checks|bench224|bench32|train OUTDIR}
out=${2:?usage: gpu_session.sh checks|bench224|bench32|train OUTDIR}
case "$part" in checks|bench224|bench32|train) ;; *)
  echo "unknown part: $part (checks, bench224, bench32 or train)" >&2; exit 2 ;;
esac
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "nvidia-smi failed"; } \
  | tee "$out/gpu_$part.txt"
case "$part" in
  checks)
    "$python" benchmarks/cuda_checks.py --output "$out/cuda_checks.json" 2>&1 | tee "$out/cuda_checks.log"
    # pytest may be missing on a bare machine; the checks above do not need it.
    if "$python" -c "import pytest" 2>/dev/null; then
      "$python" -m pytest -q -p no:cacheprovider tests/test_determinism.py tests/test_launch_budget.py \
        2>&1 | tee "$out/pytest_cuda.log"
    else
      echo "pytest not installed: CUDA determinism tests skipped" | tee "$out/pytest_cuda.log"
    fi
    ;;
  bench224|bench32)
    shape=$([ "$part" = bench224 ] && echo 256x3x224x224 || echo 1024x3x32x32)
    "$python" benchmarks/bench_torch.py --device cuda --compile --graphs --shapes "$shape" \
      --output "$out/torch_cuda_$part.json" --markdown "$out/torch_cuda_$part.md" 2>&1 | tee "$out/$part.log"
    ;;
  train)
    for precision in fp32 bf16; do
      "$python" benchmarks/bench_train_step.py --device cuda --precision "$precision" \
        --output "$out/train_step_cuda_$precision.json" 2>&1 | tee "$out/train_$precision.log"
    done
    ;;
esac
