"""Entry point of the `headstart` command.

Every command is the headstart.api function of the same name (its help is the first line of the
function's docstring), and its flags are the fields of that function's typed config (headstart.configs,
and TrainConfig), made by headstart.settings. `--config FILE` reads a YAML or JSON recipe of those fields
first (flags win); `--print-config` prints the resolved config and stops. `headstart run` takes a pipeline
recipe and sets any key of it with a dotted flag (`--train.lr 1e-3`, `--baselines.random.lr 0.004`),
checked where the recipe's keys are. With `--json`, a command ends with its summary as one line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

from headstart.errors import UsageError, write_failure

RUN_FLAGS = """Any key of the recipe is a flag for this run: --out DIR, --train.lr 1e-3, --search.evals 64,
--baselines.random.lr 0.002 0.004 (several values: a list), --train.compile / --train.no-compile (a switch);
a step's fields are listed by `headstart STEP --help`.
Example: recipes/demo.yaml (what `make demo` runs)."""


class Parser(argparse.ArgumentParser):
    """Bad flags are one UsageError line (naming the closest flag), like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        from headstart.settings import closest

        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        options = [o for p in (self, *getattr(self, "commands", [])) for a in p._actions for o in a.option_strings]
        hint = closest(unknown.group(1).split("=")[0], options) if unknown else ""
        prog = self.commands[0].prog if len(getattr(self, "commands", [])) == 1 else self.prog
        raise UsageError(message, f"{hint}see `{prog} --help`")


def build_parser(argv: list[str] | None = None) -> Parser:
    """The full parser; only the chosen command's flags are made, so start-up stays fast."""
    from headstart import __version__, api

    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = Parser(prog="headstart", description="Give small language models a head start: search a teacher for "
                    "the best sub-network, extract it, and pretrain it with distillation.")
    parser.add_argument("--version", action="version", version=f"headstart {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    parser.commands = []
    for name, (config, function) in api.COMMANDS.items():
        help_text = function.__doc__.split("\n")[0].rstrip(".")  # the first line of its docstring
        cmd = sub.add_parser(name, help=help_text[0].lower() + help_text[1:], description=help_text)
        if chosen in api.COMMANDS and name != chosen:
            continue
        parser.commands.append(cmd)
        what = f"{config.__name__} fields" if config else "the pipeline: out, teacher, data, baselines and a section " \
            "per step"
        cmd.add_argument("--config", metavar="FILE", help=f"a YAML or JSON recipe of {what}; flags given win over it")
        cmd.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and stop")
        cmd.add_argument("--json", action="store_true", help="end with one JSON summary line")
        if name == "run":
            from headstart import pipeline

            cmd.formatter_class = argparse.RawDescriptionHelpFormatter
            cmd.epilog = pipeline.__doc__.split("\n", 2)[2] + "\n" + RUN_FLAGS
            continue
        from headstart.settings import add_flags

        add_flags(cmd, config)
        if name == "train":
            cmd.add_argument("--resume", action="store_true",
                             help="continue the run in --out from its last checkpoint (afresh if it has none)")
    return parser


def _config(args: argparse.Namespace, extra: list[str]) -> Any:
    """The command's config: its --config recipe, then the flags given (any recipe key under `run`)."""
    from headstart import api
    from headstart.settings import fields_of_words, given, make, read_recipe

    if args.command == "run":
        from headstart.pipeline import load_pipeline

        if not args.config:
            raise UsageError("no recipe given", "pass --config RECIPE.yaml (e.g. recipes/demo.yaml)")
        return load_pipeline(args.config, fields_of_words(extra))
    cls = api.COMMANDS[args.command][0]
    recipe = read_recipe(cls, args.config) if args.config else {}
    return make(cls, recipe | given(args, cls))


def run_command(args: argparse.Namespace, extra: list[str] = ()) -> dict[str, Any] | None:
    """The chosen command, from its parsed flags; the summary it returns is what --json prints."""
    from headstart import api

    cfg = _config(args, list(extra))
    if args.print_config:  # checked as a run would check it, then printed
        import yaml

        if args.command == "run":
            from headstart.pipeline import check_pipeline

            check_pipeline(cfg)
        else:
            cfg.check()
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return None
    function = api.COMMANDS[args.command][1]
    if args.command == "run":
        return function(cfg)
    result = function(cfg, resume=args.resume) if args.command == "train" else function(cfg)
    if os.environ.get("RANK", "0") == "0":
        print(result.describe())
    return result.to_dict()


def main(argv: list[str] | None = None) -> int:
    from headstart import api

    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    prog = f"headstart {chosen}" if chosen in api.COMMANDS else "headstart"
    try:
        parser = build_parser(argv)
        args, extra = parser.parse_known_args(argv)
        if extra and args.command != "run":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        summary = run_command(args, extra)
    except (UsageError, OSError) as err:
        usage = err if isinstance(err, UsageError) else write_failure(err)
        if usage is None:
            raise
        print(f"{prog}: error: {usage}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    if args.json and os.environ.get("RANK", "0") == "0":  # under torchrun, one summary: rank 0's
        print(json.dumps(summary if summary is not None else {}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
