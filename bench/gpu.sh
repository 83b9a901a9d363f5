#!/usr/bin/env bash
# The device check (issue 14), on a machine with one CUDA GPU, in under 9 minutes:
#   1. the CUDA tests, tests/test_cuda.py: bf16 and compiled training against fp32 and eager, fused AdamW,
#      asynchronous checkpoints of GPU state, bf16 search perplexity within 1% of fp32 (at most 3 minutes);
#   2. bench/gpu.py: training tokens/s and MFU with KD (Pythia-160M-shaped student, Pythia-410M-shaped
#      teacher) eager / compiled / compiled with activation checkpointing, and search evaluations/s in bf16
#      against fp32 (at most 5 minutes); writes bench/results/gpu.{json,md}, with the tests' outcome.
# It runs from the checkout: PYTHONPATH=src, no install. The GPU machine has torch, transformers, tokenizers,
# safetensors, tqdm, matplotlib, pyarrow, pyyaml and tensorboard and no registry; where pytest is missing,
# WHEELS=DIR names a folder with its wheels (pytest, pluggy, iniconfig), else the tests are skipped and say so.
#   bash bench/gpu.sh                               # on the GPU machine
#   bash bench/gpu.sh --dry-run --results DIR       # tiny shapes on a CPU: checks the script, measures nothing
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python3}
if [[ ${1:-} == --dry-run ]]; then
  exec "$PYTHON" bench/gpu.py "$@"
fi
"$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else
  'bench/gpu.sh: no CUDA GPU is visible; on a CPU, check the script with bench/gpu.sh --dry-run')"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if ! "$PYTHON" -c "import pytest" 2>/dev/null && [[ -n ${WHEELS:-} ]]; then
  "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" --target "$scratch/site" pytest
  export PYTHONPATH="$PYTHONPATH:$scratch/site"
fi
junit=()
if "$PYTHON" -c "import pytest" 2>/dev/null; then
  timeout 180 "$PYTHON" -m pytest -q -p no:cacheprovider --junitxml="$scratch/cuda.xml" tests/test_cuda.py || true
  junit=(--junit "$scratch/cuda.xml")
else
  echo "bench/gpu.sh: pytest is not importable (give WHEELS=DIR); the CUDA tests are not run" >&2
fi
timeout 300 "$PYTHON" bench/gpu.py "${junit[@]}" "$@"
