#!/usr/bin/env bash
# `make demo`: fetch the prose corpus (once), then run the whole pipeline of recipes/demo.yaml on the
# shipped scale-model teacher: prepare -> search -> extract -> train with distillation -> eval.
set -euo pipefail
out=${1:-runs/demo}
hs=${HEADSTART:-.venv/bin/headstart}
"$hs" assets --only corpus
"$hs" run --config recipes/demo.yaml --out "$out"
echo "demo: search in $out/search (best.json, pareto.png, progress.png), student in $out/train/final, scores in $out/eval.json"
