#!/usr/bin/env bash
# `make demo`: the main job on the embedded default, end to end on this machine.
# Today: fetch the offline assets, prepare the prose corpus with the teacher's tokenizer
# (whole documents held out), and report the real teacher's held-out perplexity.
set -euo pipefail
out=${1:-runs/demo}
hs=${HEADSTART:-.venv/bin/headstart}
corpus=$(.venv/bin/python -c 'from headstart.assets import cache_dir; print(cache_dir() / "corpus")')

"$hs" assets
if [ ! -f "$out/data-smollm2/manifest.json" ]; then
  "$hs" prepare --tokenizer smollm2 \
    --input "$corpus/shakespeare" "$corpus/kjv" "$corpus/austen" "$corpus/brown" \
    --val-docs 'persuasion.txt' 'hamlet.txt' 'tempest.txt' 'twelfth_night.txt' 'cr*.txt' \
    --out "$out/data-smollm2"
fi
"$hs" eval --model smollm2-135m --data "$out/data-smollm2" --tokens 8192 --seq-len 512 --json \
  | tee "$out/teacher-eval.log"
tail -n 1 "$out/teacher-eval.log" > "$out/teacher-eval.json"
echo "demo: results in $out (teacher-eval.json)"
