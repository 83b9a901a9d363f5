#!/usr/bin/env bash
# The study on the scale-model teacher, step by step; each step is `headstart run` on one recipe, so
# running this again continues where it was cut off (finished training runs are not trained again).
# Run from the repository root: bash recipes/study/run.sh [RECIPE ...]  (default: all, in order;
# in the background: nohup bash recipes/study/run.sh > study.log &), then python scripts/study_report.py
set -euo pipefail
hs=${HEADSTART:-.venv/bin/headstart}
py=${PYTHON:-.venv/bin/python}
"$hs" assets --only corpus
data=runs/study/data
if [ ! -f "$data/manifest.json" ]; then  # the demo's data: the teacher's tokenizer, the same held-out documents
  "$hs" prepare --tokenizer scale-teacher --input corpus:shakespeare corpus:kjv corpus:austen corpus:brown \
    --val-docs persuasion.txt hamlet.txt tempest.txt twelfth_night.txt 'cr*.txt' --out "$data"
fi
# headline-25 and its second and third seeds first (the analyses, all at 25%, race to its from-scratch arm),
# then the analyses (the fidelity ones first: the search's defaults hang on them; kd-losses before kd-per-flop:
# it fills the logit cache kd-per-flop reads), then headline-50 and its second and third seeds, the longest (its
# KD arms run at about half the CE arms' speed on a CPU), then the layers space at 53% (it cannot reach 25%, nor
# 50%), and last headline-25 against a 20M-token baseline and its second seed, which neither the headline nor
# the analyses need; then the horizon checks: seed 2's 1M-token sweep at 50% picked a higher rate (0.004) than
# seeds 0 and 1 (0.002), so its from-scratch arm also trains at 0.002 for the whole 10M tokens, and theirs at
# 0.004; at 25% seed 1 picked 0.004 and seeds 0 and 2 0.002, and each trains at the other
all="headline-25 headline-25-seed1 headline-25-seed2 rank-correlation-25 halving-25 select-25 kd-losses
kd-per-flop granularity-coarse-uniform granularity-coarse-layerwise granularity-fine-uniform
granularity-fine-layerwise objective-importance objective-magnitude headline-50 headline-50-seed1
headline-50-seed2 granularity-fine-layerwise-53 granularity-layers-53 headline-25-20m headline-25-20m-seed1 horizon-50-seed2
horizon-50 horizon-50-seed1 horizon-25 horizon-25-seed1 horizon-25-seed2"
for recipe in ${*:-$all}; do
  case $recipe in
    rank-correlation-25)  # 16 candidates of the headline's search, each trained briefly with KD like the study
      "$py" recipes/study/rank_correlation.py --search runs/study/headline-25/search --teacher scale-teacher \
        --data runs/study/data --out runs/study/rank-correlation-25 --candidates 16 --tokens 200K --kd forward_kl \
        --seq-len 256 --batch-size 32 --micro-batch-size 32 --lr 0.002 --eval-every 20 --eval-tokens 65536 \
        --checkpoint-every 10 ;;
    halving-25)  # multi-fidelity: the search's 8 best, successive halving from 100K tokens, against its best
      "$hs" select --search runs/study/headline-25/search --teacher scale-teacher --data runs/study/data \
        --out runs/study/halving-25 --candidates 8 --tokens 100K --eta 2 --kd forward_kl --equal-compute \
        --seq-len 256 --batch-size 32 --micro-batch-size 32 --lr 0.002 --eval-tokens 65536 ;;
    horizon-*)  # a headline run's from-scratch arm for the whole 10M tokens at the rate its other seeds' 1M-token
      # sweeps kept (HORIZON_RUNS in scripts/study_report.py); the architecture is the run's own student, or made
      # again by its recipe's importance, search and extract steps where the run's folders are gone
      run=headline${recipe#horizon} seed=${recipe##*-seed}
      [ "$seed" = "$recipe" ] && seed=0
      case $recipe in horizon-50-seed2|horizon-25-seed1) lr=0.002 ;; *) lr=0.004 ;; esac
      student=runs/study/$run/student
      [ -f "$student/config.json" ] || student=$("$py" recipes/study/student.py "$run" "runs/study/$recipe/$run")
      "$hs" train --student "$student" --data runs/study/data --random-init --lr "$lr" --tokens 10M \
        --micro-batch-size 32 --eval-every 50 --eval-log-spaced --checkpoint-every 50 --seed "$seed" \
        --out "runs/study/$recipe/lr$lr" --resume ;;
    *) "$hs" run --config "recipes/study/$recipe.yaml" ;;
  esac
done
