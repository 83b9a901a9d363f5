"""`headstart run`: prepare -> (importance) -> search -> extract -> train -> eval, from one recipe file."""

from __future__ import annotations

import argparse

from headstart.pipeline import __doc__ as PIPELINE_DOC


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = PIPELINE_DOC.split("\n", 2)[2] + "\nExample: recipes/demo.yaml (what `make demo` runs)."
    parser.add_argument("--config", required=True, metavar="FILE", help="the pipeline recipe (YAML or JSON)")
    parser.add_argument("--out", metavar="DIR", help="output folder (overrides the recipe's `out`)")


def run(args: argparse.Namespace) -> dict:
    from headstart.pipeline import load_pipeline_recipe, run_pipeline

    return run_pipeline(load_pipeline_recipe(args.config, args.out))
