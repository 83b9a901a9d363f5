#!/usr/bin/env bash
# `make demo`: the main job on the embedded default, end to end on a CPU in about ten minutes.
# The shipped scale-model teacher (a 6.8M-parameter Pythia-style GPT-NeoX) is searched for its
# best quarter-size sub-network, which is extracted, pretrained briefly (300K tokens) with distillation from
# the teacher, and scored on held-out documents next to the teacher.
set -euo pipefail
out=${1:-runs/demo}
hs=${HEADSTART:-.venv/bin/headstart}
corpus=$(.venv/bin/python -c 'from headstart.assets import cache_dir; print(cache_dir() / "corpus")')

"$hs" assets --only corpus
if [ ! -f "$out/data/manifest.json" ]; then
  "$hs" prepare --tokenizer scale-teacher \
    --input "$corpus/shakespeare" "$corpus/kjv" "$corpus/austen" "$corpus/brown" \
    --val-docs 'persuasion.txt' 'hamlet.txt' 'tempest.txt' 'twelfth_night.txt' 'cr*.txt' \
    --out "$out/data"
fi
"$hs" search --teacher scale-teacher --data "$out/data" --space fine-layerwise --budget 25% \
  --strategy evolution --evals 32 --tokens 8192 --seq-len 256 --out "$out/search"
"$hs" extract --teacher scale-teacher --spec "$out/search/best.json" --out "$out/student"
"$hs" train --student "$out/student" --data "$out/data" --teacher scale-teacher --kd forward_kl \
  --tokens 300K --seq-len 256 --batch-size 32 --micro-batch-size 32 --lr 0.002 --eval-every 10 \
  --eval-tokens 65536 --out "$out/train" --resume
"$hs" eval --model scale-teacher --data "$out/data" --tokens 65536 --seq-len 256 --json | tee "$out/teacher-eval.log"
"$hs" eval --model "$out/train/final" --data "$out/data" --tokens 65536 --seq-len 256 --json | tee "$out/student-eval.log"
echo "demo: search in $out/search (best.json, pareto.png, progress.png), student in $out/train/final"
