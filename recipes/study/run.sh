#!/usr/bin/env bash
# The study on the scale-model teacher, step by step; each step is `headstart run` on one recipe, so
# running this again continues where it was cut off (finished training runs are not trained again).
# Run from the repository root: bash recipes/study/run.sh [RECIPE ...]  (default: all, in order;
# in the background: nohup bash recipes/study/run.sh > study.log &), then python scripts/study_report.py
set -euo pipefail
hs=${HEADSTART:-.venv/bin/headstart}
"$hs" assets --only corpus
data=runs/study/data
if [ ! -f "$data/manifest.json" ]; then  # the demo's data: the teacher's tokenizer, the same held-out documents
  "$hs" prepare --tokenizer scale-teacher --input corpus:shakespeare corpus:kjv corpus:austen corpus:brown \
    --val-docs persuasion.txt hamlet.txt tempest.txt twelfth_night.txt 'cr*.txt' --out "$data"
fi
# the headlines first (the analyses race to their from-scratch arms), then the analyses
all="headline-25 headline-50 kd-losses kd-per-flop granularity-coarse-uniform granularity-coarse-layerwise
granularity-fine-uniform granularity-fine-layerwise granularity-layers objective-importance objective-magnitude"
for recipe in ${*:-$all}; do
  "$hs" run --config "recipes/study/$recipe.yaml"
done
