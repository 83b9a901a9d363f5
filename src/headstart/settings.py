"""Typed configs: one dataclass per step, each field with its default and help in one place.

The same fields are a step's keyword arguments in `headstart.api`, its section in a pipeline
recipe (`seq_len: 256`) and its command's flags (`--seq-len 256`; `--train.seq-len` under
`headstart run`). Values are parsed here, whatever their source, so that `--tokens 20M`,
`tokens: 20M` and `tokens="20M"` mean the same, and a bad one is one UsageError line.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

from headstart.errors import UsageError

C = TypeVar("C")
DEVICE_HELP = "auto, cpu, cuda or cuda:N (under torchrun: each rank's)"
COUNT = "[1, inf)"  # the `within` of a count of things: at least one


def setting(default: Any, help: str, choices: tuple[str, ...] | None = None, within: str | None = None) -> Any:
    """A config field; its help becomes the flag's, `choices` (from the code that uses them) are checked, and so
    is `within`, the interval a number lies in as written: "(0, inf)", "[0, 1)" (NaN lies in none)."""
    metadata = {"help": help, "choices": choices, "within": within}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def closest(name: str, valid: list[str] | tuple[str, ...]) -> str:
    """`did you mean X? ` for a misspelled name, or nothing."""
    near = difflib.get_close_matches(name, list(valid), n=1)
    return f"did you mean {near[0]}? " if near else ""


def field_types(cls: type) -> dict[str, type]:
    """The scalar type of every field (`str | None` -> str, `list[str] | None` -> list)."""
    kinds = {}
    for name, hint in get_type_hints(cls).items():
        if get_origin(hint) in (Union, types.UnionType):
            hint = next(t for t in get_args(hint) if t is not type(None))
        kinds[name] = get_origin(hint) or hint
    return {f.name: kinds[f.name] for f in dataclasses.fields(cls)}


def defaults(cls: type) -> dict[str, Any]:
    return dataclasses.asdict(cls())


SUFFIXES = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}  # of counts and budgets: 20M


def parse_count(text: str | int | float) -> int:
    """A whole number, also as 2e6 or with a k/M/B/T suffix (`--tokens 20M`)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = re.fullmatch(r"\s*([-+]?[0-9.eE+-]+)\s*([kKmMbBgGtT]?)\s*", str(text))
    try:
        value = float(match.group(1)) * SUFFIXES.get(match.group(2).lower(), 1) if match else float("nan")
    except ValueError:
        value = float("nan")
    if value != value or value != int(value):
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def parse_value(cls: type, name: str, value: Any, kind: type | None = None, where: str = "") -> Any:
    """A recipe, flag or keyword value as the type of field `name` of `cls`; a wrong one is a UsageError naming
    the field as `where` spells it (a recipe's section, or the flag when `where` is empty)."""
    kind, shown = kind or field_types(cls)[name], f"{where}: {name}" if where else flag(name)
    if value is None:
        return None
    words = ("true", "yes", "1", "false", "no", "0")
    if isinstance(value, bool) and kind is not bool:  # `--train.lr` with no value reads as a switch
        raise UsageError(f"{name} was given no value", f"give it one: {flag(name)} VALUE")
    try:
        if kind is list:
            parsed = [str(v) for v in (value if isinstance(value, list | tuple) else [value])]
        elif kind is bool and not isinstance(value, bool):
            parsed = words.index(str(value).lower()) < 3
        elif kind is str and isinstance(value, dict):  # a spec given as a mapping, in Python (ExtractResult.spec)
            parsed = json.dumps(value)
        else:
            parsed = parse_count(value) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise UsageError(f"{shown} {value!r} is not a valid {kind.__name__}",
                         f"give {name} a value of type {kind.__name__}") from None
    choices = cls.__dataclass_fields__[name].metadata.get("choices")
    for item in (parsed if kind is list else [parsed]) if choices is not None else []:
        if item not in choices:
            raise UsageError(f"{shown} {item!r} is unknown", f"{closest(str(item), choices)}use one of "
                             f"{', '.join(choices)}")
    return parsed


def parse_fields(cls: type, values: dict[str, Any], where: str = "") -> dict[str, Any]:
    """`values` checked against the fields of `cls` (names, types, choices), each parsed; a field `cls` does not
    have is refused, naming the closest one. `where` says where they were written (empty: flags)."""
    kinds = field_types(cls)
    for name in values:
        if name not in kinds:
            raise UsageError(f"{where or 'flags'}: {name!r} is not a setting of {cls.__name__}",
                             f"{closest(str(name), list(kinds))}use one of {', '.join(kinds)}")
    return {name: parse_value(cls, name, value, kinds[name], where) for name, value in values.items()}


def make(cls: type[C], values: dict[str, Any] | None = None, where: str = "") -> C:
    """Defaults, then `values`; parsed and validated."""
    cfg = cls(**parse_fields(cls, values or {}, where))
    cfg.validate()
    return cfg


def config_or_fields(cls: type[C], config: C | None, fields: dict[str, Any]) -> C:
    """What an API function was given: a config, keyword fields, or a config with some fields replaced."""
    return make(cls, (dataclasses.asdict(config) if config is not None else {}) | fields, cls.__name__)


def command_line(cfg: Any, command: str, leave_out: tuple[str, ...] = ()) -> str:
    """`headstart COMMAND --flag value ...` that makes `cfg` again: its required fields and those away from
    their defaults (how a result says it was made)."""
    import shlex

    words, default = ["headstart", command], defaults(type(cfg))
    for name, value in dataclasses.asdict(cfg).items():
        if name not in leave_out and (name in cfg.required or value != default[name]):
            if isinstance(value, bool):
                words.append(flag(name) if value else flag("no_" + name))
            elif value is not None:
                words += [flag(name), *map(str, value if isinstance(value, list) else [value])]
    return shlex.join(words)


def from_command_line(cls: type[C], words: str) -> C:
    """The config a `headstart COMMAND --flag value ...` line (command_line's) makes, whatever its words' order."""
    import shlex

    return make(cls, fields_of_words(shlex.split(words)[2:]), words)


def fields_of_words(words: list[str]) -> dict[str, Any]:
    """`--out D --train.lr 1e-3 --prepare.input a b --train.no-compile` as {"out": "D", "train.lr": "1e-3",
    "prepare.input": ["a", "b"], "train.compile": False}: fields or dotted recipe keys, their values still text
    (make and parse_fields check and parse them; command_line writes such words)."""
    values_of: dict[str, list[str]] = {}
    for word in words:
        if word.startswith("--"):
            key, eq, value = word[2:].partition("=")
            *path, name = key.split(".")  # dashes only in the field's name: an arm's name may hold one
            values_of[".".join([*path, name.replace("-", "_")])] = [value] if eq else []
        elif not values_of:
            raise UsageError(f"unrecognized arguments: {word}", "give a --flag before each value")
        else:
            values_of[list(values_of)[-1]].append(word)
    overrides: dict[str, Any] = {}
    for key, values in values_of.items():
        *path, name = key.split(".")
        if values:
            overrides[key] = values[0] if len(values) == 1 else values
        else:  # a switch
            overrides[".".join([*path, name.removeprefix("no_")])] = not name.startswith("no_")
    return overrides


def _bounds(interval: str) -> tuple[str, str]:
    """The two bounds of an interval written "[low, high)", each closed [ ] or open ( )."""
    low, high = interval[1:-1].split(",")
    return low.strip(), high.strip()


def in_interval(value: float, interval: str) -> bool:
    low, high = map(float, _bounds(interval))
    above = low <= value if interval[0] == "[" else low < value
    return above and (value <= high if interval[-1] == "]" else value < high)


def interval_words(interval: str) -> str:
    """`at least 1` for "[1, inf)", else `in (0, 1]`: how a help and an error say it."""
    low, high = _bounds(interval)
    return f"at least {low}" if interval[0] == "[" and high == "inf" else f"in {interval}"


class Config:
    """Base of the configs: validate() checks the `required` fields and each field's `within` (a subclass adds
    checks); check() adds what can be checked of the outputs (`out_kind`; a subclass adds more)."""

    required: ClassVar[tuple[str, ...]] = ()
    # an existing --out is replaced only if it is this step's own earlier output: what that is, and a test of it
    out_kind: ClassVar[tuple[str, Callable[[Path], bool]] | None] = None

    def validate(self) -> None:
        missing = [name for name in self.required if getattr(self, name) in (None, "", [])]
        if missing:
            raise UsageError(f"missing {', '.join(map(flag, missing))}", "give them as flags, keyword arguments or "
                             "in the --config recipe")
        for f in dataclasses.fields(self):
            value, within = getattr(self, f.name), f.metadata.get("within")
            if within and value is not None and not in_interval(value, within):
                wanted = interval_words(within)
                fix = f"give a value of {wanted}" if wanted.startswith("at least") else f"give a value {wanted}"
                raise UsageError(f"{flag(f.name)} must be {wanted}, got {value}", fix)

    def check(self) -> None:
        from headstart.atomic import check_out_replaceable

        self.validate()
        if self.out_kind is not None:
            check_out_replaceable(self.out, *self.out_kind, overwrite=getattr(self, "overwrite", None))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _once_each(path: Path, pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A mapping of `pairs`, refused if a key is written twice (YAML and JSON parsers keep the last silently)."""
    keys = [key for key, _ in pairs]
    twice = next((key for i, key in enumerate(keys) if key in keys[:i]), None)
    if twice is not None:
        raise UsageError(f"recipe {path} sets {twice!r} twice in one mapping", "keep one of them")
    return dict(pairs)


def read_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The top-level mapping of a YAML (.yaml/.yml) or JSON file; anything else is a UsageError."""
    import yaml  # comes with transformers

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"recipe {path} does not exist", f"give {what}")

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            _once_each(path, [(self.construct_object(key, deep=deep), None) for key, _ in node.value])
            return super().construct_mapping(node, deep)

    try:
        text = path.read_text()
        raw = (yaml.load(text, Loader) if path.suffix in (".yaml", ".yml")
               else json.loads(text, object_pairs_hook=lambda pairs: _once_each(path, pairs)))
    except UsageError:
        raise
    except Exception as err:  # yaml and json raise their own error types
        raise UsageError(f"recipe {path} cannot be parsed ({type(err).__name__})", "fix its syntax") from None
    if not isinstance(raw, dict):
        raise UsageError(f"recipe {path} is not a mapping of fields", "write `field: value` lines")
    return raw


def read_recipe(cls: type, path: str | Path) -> dict[str, Any]:
    """The fields of `cls` a YAML or JSON recipe sets, parsed; an unknown key is refused, naming the closest field."""
    return parse_fields(cls, read_mapping(path, f"a YAML or JSON file of {cls.__name__} fields"), f"recipe {path}")


def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """A flag per field of `cls` (`--seq-len`); a flag not given leaves the field to the recipe or its default,
    so values are parsed once, by parse_value."""
    values, kinds = defaults(cls), field_types(cls)
    for f in dataclasses.fields(cls):
        choices = f.metadata.get("choices")
        shown = f" ({', '.join(map(str, choices))})" if choices else ""
        default = "required" if f.name in cls.required else f"default: {values[f.name]}"
        default += f", {interval_words(f.metadata['within'])}" if f.metadata.get("within") else ""
        options: dict[str, Any] = {"default": argparse.SUPPRESS,
                                   "help": f"{f.metadata['help']}{shown} ({default})".replace("%", "%%")}
        if kinds[f.name] is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options |= {"metavar": f.name.split("_")[-1].upper(), "nargs": "+" if kinds[f.name] is list else None}
        parser.add_argument(flag(f.name), dest=f.name, **options)


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of `cls` given as flags (their raw text)."""
    return {name: value for name, value in vars(args).items() if name in cls.__dataclass_fields__}
