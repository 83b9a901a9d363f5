#!/usr/bin/env bash
# The study on the scale-model teacher, step by step; each step is `headstart run` on one recipe, so
# running this again continues where it was cut off (finished steps are replayed in seconds).
# Run from the repository root: bash recipes/study/run.sh  (log: nohup bash recipes/study/run.sh > study.log &)
set -euo pipefail
hs=${HEADSTART:-.venv/bin/headstart}
"$hs" assets --only corpus
data=runs/study/data
if [ ! -f "$data/manifest.json" ]; then  # the demo's data: the teacher's tokenizer, the same held-out documents
  "$hs" prepare --tokenizer scale-teacher --input corpus:shakespeare corpus:kjv corpus:austen corpus:brown \
    --val-docs persuasion.txt hamlet.txt tempest.txt twelfth_night.txt 'cr*.txt' --out "$data"
fi
for recipe in "$@"; do
  "$hs" run --config "recipes/study/$recipe.yaml"
done
