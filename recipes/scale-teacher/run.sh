#!/usr/bin/env bash
# Trains and ships the scale-model teacher from a fresh clone (about 1.5 hours on 2 CPU cores):
# assets -> 4096-token BPE + shards (whole documents held out) -> random init -> train -> the quarter-size
# comparison (a few minutes) -> ship (bf16 folder, held-out evaluation, card, curve).
set -euo pipefail
cd "$(dirname "$0")/../.."
hs=.venv/bin/headstart
recipe=recipes/scale-teacher
"$hs" assets --extras
if [ ! -f runs/scale-teacher/data/manifest.json ]; then
  "$hs" prepare --train-tokenizer 4096 \
    --input corpus:shakespeare corpus:kjv corpus:austen corpus:brown corpus:fortunes corpus:python_docs \
    --val-docs 'persuasion.txt' 'hamlet.txt' 'tempest.txt' 'twelfth_night.txt' 'cr*.txt' \
    --out runs/scale-teacher/data
fi
"$hs" init --architecture "$recipe/architecture.json" --tokenizer runs/scale-teacher/data/tokenizer \
  --out runs/scale-teacher/init --seed 0
"$hs" train --config "$recipe/train.yaml" --resume
bash "$recipe/quarter-student.sh"
.venv/bin/python scripts/ship_teacher.py runs/scale-teacher/train src/headstart/teachers/scale-teacher \
  --compare runs/scale-teacher/quarter-train
