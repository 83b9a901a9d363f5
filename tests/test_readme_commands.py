"""The README stays true: every `headstart` command its code blocks show parses as shown (its flags are the
command's, its values valid), and every flag its prose names is a flag of some command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from headstart import api
from headstart.cli.main import build_parser
from headstart.pipeline import load_pipeline
from headstart.settings import fields_of_words, given, make

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
NOT_FLAGS = ("--micro_batch_size",)  # how the README says jsonargparse would spell a flag: not ours


def shown_commands() -> list[str]:
    """The `headstart ...` lines of the README's code blocks, continuations joined, comments and the
    [optional] parts of the synopsis dropped."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", README, flags=re.S | re.M)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    commands = [re.sub(r"\s#.*", "", line).strip() for line in lines if line.startswith("headstart ")]
    return [re.sub(r"\[[^\]]*\]", "", command) for command in commands]


COMMANDS = shown_commands()


def test_the_readme_shows_a_command_of_every_step():
    assert {shlex.split(c)[1] for c in COMMANDS} >= {"assets", "prepare", "importance", "space", "search",
                                                      "select", "extract", "train", "eval", "init", "run"}


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_the_readme_shows_parses_as_shown(command):
    argv = shlex.split(command)[1:]
    args, extra = build_parser(argv).parse_known_args(argv)
    if args.command == "run":
        load_pipeline(ROOT / args.config, fields_of_words(extra))
        return
    assert not extra, f"{command}: not flags of `headstart {args.command}`: {extra}"
    cls = api.COMMANDS[args.command][0]
    make(cls, given(args, cls))


def test_each_flag_the_readme_names_is_a_flag_of_a_command():
    options = {option for command in api.COMMANDS for action in build_parser([command]).commands[0]._actions
               for option in action.option_strings}
    options |= {option for action in build_parser([])._actions for option in action.option_strings}  # --version
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9._-]*[a-z0-9]", README)) - set(NOT_FLAGS)
    dotted = {flag for flag in named if "." in flag}  # `--train.lr`, `--baselines.random.lr`: a step's flag
    plain = {"--" + flag.rsplit(".", 1)[1] for flag in dotted}
    assert (named - dotted) | plain <= options, sorted(((named - dotted) | plain) - options)


def test_the_readme_python_example_uses_fields_and_results_that_exist():
    """Each `api.STEP(...)` keyword is a field of the step's config, each attribute read of its result exists."""
    import ast
    import dataclasses
    import typing

    (code,) = re.findall(r"^```python\n(.*?)^```", README, flags=re.S | re.M)
    results: dict[str, type] = {}
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value
            hints = typing.get_type_hints(getattr(api, call.func.attr))
            fields = {f.name for f in dataclasses.fields(typing.get_args(hints["config"])[0])}
            assert {k.arg for k in call.keywords} <= fields | set(hints) - {"config", "fields"}, call.func.attr
            results[node.targets[0].id] = hints["return"]
    reads = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
             and n.value.id in results]
    assert reads and all(hasattr(results[n.value.id], n.attr) or n.attr in results[n.value.id].__dataclass_fields__
                         for n in reads)
