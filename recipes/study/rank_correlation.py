"""Does untrained perplexity predict trained quality? Train candidates of a finished search briefly with KD.

    .venv/bin/python recipes/study/rank_correlation.py --search runs/study/lr-sweep-25/search \
        --teacher scale-teacher --data runs/study/data --out runs/study/rank-correlation-25

writes OUT/fidelity.json, fidelity.md and fidelity.png (see headstart.compare.fidelity). Run again, it
skips every candidate already trained and resumes the one cut off. The multi-fidelity answer to a weak
correlation is a command of its own, `headstart select` (successive halving), see recipes/study/run.sh.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from headstart.compare.fidelity import print_trial, rank_correlation
from headstart.errors import UsageError, write_failure

SETTINGS = ("seq_len", "batch_size", "micro_batch_size", "lr", "eval_every", "eval_tokens", "checkpoint_every",
            "seed")  # training fields the flags may set; the others keep TrainConfig's defaults


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--search", required=True, metavar="DIR", help="a finished `headstart search` --out folder")
    parser.add_argument("--teacher", required=True, metavar="T", help="the search's teacher (folder or short name)")
    parser.add_argument("--data", required=True, metavar="D", help="prepared data to train and validate on")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder; an existing one is resumed")
    parser.add_argument("--candidates", type=int, default=16, help="candidates to train (default 16)")
    parser.add_argument("--pool", type=int, help="choose among the search's best POOL candidates (default: all)")
    parser.add_argument("--tokens", default="200K", help="training tokens per candidate (default 200K)")
    parser.add_argument("--kd", default="forward_kl", help="KD loss (default forward_kl)")
    for name in SETTINGS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar=name.split("_")[-1].upper(),
                            help="training setting (default: headstart train's)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    settings = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    common = {"search_dir": args.search, "teacher": args.teacher, "data": args.data, "out": args.out,
              "candidates": args.candidates, "tokens": args.tokens, "kd": args.kd, "settings": settings,
              "report": print_trial, "command": shlex.join(["python", "recipes/study/rank_correlation.py", *argv])}
    try:
        result = rank_correlation(pool=args.pool, **common)
        print(f"Spearman {result['spearman']:.3f}, Kendall {result['kendall']:.3f} over "
              f"{len(result['candidates'])} candidates; search's best {result['search_best']}, trained best "
              f"{result['trained_best']} -> {result['markdown']}")
    except (UsageError, OSError) as err:  # as `headstart`'s commands: bad input and a full disk are one line
        usage = err if isinstance(err, UsageError) else write_failure(err)
        if usage is None:
            raise
        print(f"rank_correlation: error: {usage}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
