#!/usr/bin/env bash
# The device check (issue 14), on a machine with one CUDA GPU, in under 9 minutes:
#   1. the CUDA tests, tests/test_cuda.py: bf16 and compiled training against fp32 and eager, fused AdamW,
#      asynchronous checkpoints of GPU state, bf16 search perplexity within 1% of fp32 (at most 3 minutes);
#   2. bench/gpu.py: training tokens/s and MFU with KD (Pythia-160M-shaped student, Pythia-410M-shaped
#      teacher) eager / compiled / compiled with activation checkpointing, and search evaluations/s in bf16
#      against fp32, and, where liger-kernel is importable, training with --kd-kernel liger beside the chunked
#      loss and the KD loss alone through both (at most 5 minutes); writes bench/results/gpu.{json,md}, with the
#      tests' outcome.
# It runs from the checkout: PYTHONPATH=src, no install. The GPU machine has torch, transformers, tokenizers,
# safetensors, tqdm, matplotlib, pyarrow, pyyaml and tensorboard and no registry. WHEELS=DIR names a folder
# of wheels for what it lacks, filled on a machine with a registry (and the GPU machine's Python version) by
#   pip download --dest DIR pytest && pip download --no-deps --dest DIR liger-kernel==0.8.5
# pytest is installed from it where missing (else the tests are skipped and say so), and liger-kernel where
# its wheel is there (--no-deps: the triton it needs comes with CUDA builds of torch); both into a scratch
# folder on PYTHONPATH, nothing into the machine's Python.
#   bash bench/gpu.sh                               # on the GPU machine
#   WHEELS=DIR bash bench/gpu.sh                    # the same, bringing pytest and liger-kernel
#   bash bench/gpu.sh --dry-run --results DIR       # tiny shapes on a CPU: checks the script, measures nothing
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python3}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if [[ -n ${WHEELS:-} ]]; then
  if ! "$PYTHON" -c "import pytest" 2>/dev/null; then
    "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" --target "$scratch/site" pytest
  fi
  liger=("$WHEELS"/liger_kernel-*.whl)
  if ! "$PYTHON" -c "import liger_kernel" 2>/dev/null && [[ -f ${liger[0]} ]]; then
    "$PYTHON" -m pip install --quiet --no-index --no-deps --target "$scratch/site" "${liger[0]}"
  fi
  export PYTHONPATH="$PYTHONPATH:$scratch/site"
fi
if [[ ${1:-} == --dry-run ]]; then
  "$PYTHON" bench/gpu.py "$@"
  exit
fi
"$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else
  'bench/gpu.sh: no CUDA GPU is visible; on a CPU, check the script with bench/gpu.sh --dry-run')"
junit=()
if "$PYTHON" -c "import pytest" 2>/dev/null; then
  timeout 180 "$PYTHON" -m pytest -q -p no:cacheprovider --junitxml="$scratch/cuda.xml" tests/test_cuda.py || true
  junit=(--junit "$scratch/cuda.xml")
else
  echo "bench/gpu.sh: pytest is not importable (give WHEELS=DIR); the CUDA tests are not run" >&2
fi
timeout 300 "$PYTHON" bench/gpu.py "${junit[@]}" "$@"
