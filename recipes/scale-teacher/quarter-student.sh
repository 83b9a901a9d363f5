#!/usr/bin/env bash
# The quarter-size comparison for the scale-model teacher (a few minutes on 2 CPU cores), run by run.sh
# after it has prepared runs/scale-teacher/data; the teacher's card shows both side by side.
set -euo pipefail
cd "$(dirname "$0")/../.."
hs=.venv/bin/headstart
recipe=recipes/scale-teacher
"$hs" init --architecture "$recipe/quarter-student.json" --tokenizer runs/scale-teacher/data/tokenizer \
  --out runs/scale-teacher/quarter-init --seed 0
"$hs" train --config "$recipe/quarter-student.yaml" --resume
