"""`headstart train`: pretrain a student on token shards, with CE alone or with KD from a teacher.

Every TrainConfig field is a flag (`--micro-batch-size 4`); `--config FILE` reads a YAML or
JSON recipe of them first. Under `torchrun --nproc-per-node N -m headstart train ...` every
rank runs this command and they train together (DDP, or FSDP2 with --parallel fsdp).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headstart.model.hub import PUSH_HELP, check_repo_id, push_to_hub

if TYPE_CHECKING:
    from headstart.train.config import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from headstart.train.config import REQUIRED, field_defaults, field_help, field_types

    parser.add_argument("--config", metavar="FILE", help="recipe: a YAML or JSON file of the fields below")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint (start afresh if it has none)")
    parser.add_argument("--push-to-hub", metavar="REPO", help=PUSH_HELP + " (final/)")
    defaults = field_defaults()
    for name, kind in field_types().items():
        flag = f"--{name.replace('_', '-')}"
        help_text = f"{field_help()[name]} ({'required' if name in REQUIRED else f'default: {defaults[name]}'})"
        if kind is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=help_text)
        else:
            parser.add_argument(flag, dest=name, default=argparse.SUPPRESS, metavar=name.split("_")[-1].upper(),
                                help=help_text)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The checked training config: defaults, then --config's recipe, then the flags given."""
    from headstart.train import load_recipe, make_config
    from headstart.train.config import field_types

    recipe = load_recipe(args.config) if args.config else {}
    flags = {name: getattr(args, name) for name in field_types() if hasattr(args, name)}
    return make_config(recipe, flags)


def check_arguments(args: argparse.Namespace) -> None:
    """Every training setting, that --out can be written and a --push-to-hub repo id, checked before anything
    runs (`headstart run` calls it before any step)."""
    from headstart.atomic import check_out_writable

    check_out_writable(config_from_args(args).out)
    if getattr(args, "push_to_hub", None):
        check_repo_id(args.push_to_hub)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from headstart.train import train

    check_arguments(args)
    summary = train(config_from_args(args), resume=args.resume)
    if os.environ.get("RANK", "0") == "0":
        print(f"trained {summary['tokens']:,} tokens in {summary['steps']} steps: validation loss "
              f"{summary['val_loss']:.4f} (perplexity {summary['val_ppl']:.2f}); model in {summary['final']}")
        if getattr(args, "push_to_hub", None):
            print(f"pushed to {push_to_hub(Path(summary['final']), args.push_to_hub)}")
    return summary
