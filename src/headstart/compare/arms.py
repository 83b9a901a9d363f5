"""The baseline arms a recipe can ask for, and what each changes of the student's own recipe.

    random            the student's architecture from random initialisation, cross-entropy only
    random_kd         the same, with the recipe's KD
    subnet_ce         the searched sub-network, cross-entropy only
    firstk_kd         the importance-ordered first-k sub-network at the same budget (no search), with KD
    random_search_kd  the best of as many random-search evaluations as the search made, with KD

Everything else (data order, seed, schedule, batch, tokens, validation windows) is the student's,
so that the arms differ only in where they start and what they learn from. An arm may override
training fields; `lr: [1e-3, 2e-3]` trains one run per rate and keeps the best final perplexity, or,
with `sweep_tokens: 1M`, sweeps the rates at that shorter budget and trains only the best at the full one.

A recipe's `variants:` are arms of its own naming: the student's sub-network trained with other
settings, KD ones included (`reverse_kl: {kd: reverse_kl}`, `ce_after_half: {kd_until: 0.5}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headstart.errors import UsageError
from headstart.settings import closest, parse_count, parse_fields, parse_value

KD_FIELDS = ("kd", "kd_weight", "temperature", "kd_top_k", "logit_cache")  # a CE arm drops them


@dataclass(frozen=True)
class Arm:
    label: str  # how the report names it
    random_init: bool = False  # start from random weights instead of the sub-network's
    kd: bool = False  # distil with the recipe's KD loss
    strategy: str | None = None  # its own search (a strategy of headstart search); None: the student's sub-network


ARMS = {
    "random": Arm("from scratch", random_init=True),
    "random_kd": Arm("from scratch + KD", random_init=True, kd=True),
    "subnet_ce": Arm("sub-network, CE"),
    "firstk_kd": Arm("importance first-k + KD", kd=True, strategy="oneshot"),
    "random_search_kd": Arm("random search + KD", kd=True, strategy="random"),
}
REFERENCE = "random"  # the arm whose final perplexity the others race to
REPORT_ORDER = ("random", "random_kd", "subnet_ce", "student", "firstk_kd", "random_search_kd")  # then variants


@dataclass(frozen=True)
class ArmPlan:
    """An arm as a recipe asks for it."""

    name: str
    arm: Arm
    overrides: dict[str, Any]  # training fields; `lr` a list of rates
    folder: str  # below the run's out: baselines/NAME or variants/NAME


def _mapping(raw: Any, what: str, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        return dict.fromkeys(raw)
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: {what} is not a mapping", "write `name: {training fields}` lines under it")
    return raw


def _overrides(raw: Any, name: str, train: dict[str, Any], where: str, fixed: tuple[str, ...]) -> dict[str, Any]:
    """An arm's training overrides, parsed by TrainConfig's types (a misspelled field named with the closest one),
    `lr` a list of rates; refuses fields the pipeline or the arm sets."""
    from headstart.train.config import TrainConfig

    if raw is not None and not isinstance(raw, dict):
        raise UsageError(f"{where}: {name} is not a mapping", "give it training fields, e.g. lr: [1e-3]")
    overrides = dict(raw or {})
    sweep_tokens = overrides.pop("sweep_tokens", None)
    if sweep_tokens is not None:
        try:
            sweep_tokens = parse_count(sweep_tokens)
        except ValueError:
            raise UsageError(f"{where}: {name}.sweep_tokens={sweep_tokens!r} is not a token count",
                             "write e.g. sweep_tokens: 1M") from None
    lrs = overrides.pop("lr", train.get("lr", TrainConfig.lr))
    lrs = lrs if isinstance(lrs, list) else [lrs]
    if not lrs or any(isinstance(lr, bool) or not isinstance(lr, int | float | str) for lr in lrs):
        raise UsageError(f"{where}: {name}.lr is not a rate or a list of rates", "write lr: [1e-3, 2e-3]")
    taken = sorted(k for k in overrides if k in ("student", "data", "out", "teacher", "resume", "config", *fixed))
    if taken:
        raise UsageError(f"{where}: {name}.{taken[0]} is set by the pipeline or the arm itself",
                         "remove it; an arm changes only what defines it")
    if sweep_tokens is not None and len(lrs) < 2:
        raise UsageError(f"{where}: {name}.sweep_tokens needs rates to sweep", "give lr: [1e-3, 2e-3, ...]")
    overrides = parse_fields(TrainConfig, overrides, f"{where}: {name}")
    lrs = [parse_value(TrainConfig, "lr", lr, where=f"{where}: {name}") for lr in lrs]
    return {**overrides, "lr": lrs, **({"sweep_tokens": sweep_tokens} if sweep_tokens is not None else {})}


def parse_arms(baselines: Any, variants: Any, train: dict[str, Any], where: str) -> list[ArmPlan]:
    """A recipe's `baselines:` and `variants:` as arms to train; refuses what cannot run."""
    plans = []
    for name, raw in _mapping(baselines, "baselines", where).items():
        if name not in ARMS:
            raise UsageError(f"{where}: baseline {name!r} is unknown",
                             f"{closest(name, tuple(ARMS))}use {', '.join(ARMS)}")
        if name == "subnet_ce" and not train.get("kd"):
            raise UsageError(f"{where}: baseline subnet_ce is the student itself when train sets no kd",
                             "drop the arm, or add `kd: forward_kl` under train")
        if ARMS[name].kd and not train.get("kd"):
            raise UsageError(f"{where}: baseline {name} distils with the recipe's KD, and train sets no kd",
                             "add `kd: forward_kl` under train, or drop the arm")
        overrides = _overrides(raw, f"baselines.{name}", train, where, ("random_init", *KD_FIELDS))
        plans.append(ArmPlan(name, ARMS[name], overrides, f"baselines/{name}"))
    for name, raw in _mapping(variants, "variants", where).items():
        if name in ARMS or name == "student" or not str(name).replace("_", "").replace("-", "").isalnum():
            raise UsageError(f"{where}: variant name {name!r} is taken or not a plain name",
                             "name it with letters, digits, - and _, other than the baselines' names")
        overrides = _overrides(raw, f"variants.{name}", train, where, ("random_init",))
        shown = ", ".join(f"{k}={v}" for k, v in overrides.items() if k not in ("lr", "sweep_tokens")) or \
            "the student's settings"
        plans.append(ArmPlan(name, Arm(f"{name} ({shown})", kd=True), overrides, f"variants/{name}"))
    return plans


def arm_train_section(train: dict[str, Any], arm: Arm, overrides: dict[str, Any], lr: Any) -> dict[str, Any]:
    """The student's training section, changed only where the arm differs."""
    section = {k: v for k, v in train.items() if arm.kd or k not in KD_FIELDS}
    section |= {k: v for k, v in overrides.items() if k not in ("lr", "sweep_tokens")}
    section["lr"] = lr
    if arm.random_init:
        section["random_init"] = True
    return section


def final_perplexity(folder: Path) -> float:
    """The last validation perplexity of a finished training run folder."""
    import json

    try:
        return json.loads((folder / "summary.json").read_text())["val_ppl"]
    except (OSError, ValueError, KeyError):
        raise UsageError(f"the training run {folder} has not finished", "run the recipe again to finish it") from None


def best_rate(candidates: list[tuple[str, Path]]) -> str:
    """The rate whose sweep run (a finished training folder) ended at the lowest validation perplexity."""
    return min(candidates, key=lambda c: final_perplexity(c[1]))[0]


def short_sweep(where: Path, lrs: list[Any]) -> list[tuple[str, Path]]:
    """(rate, run folder) of each run of a sweep at the shorter `sweep_tokens` budget."""
    return [(str(lr), where / f"sweep-lr{float(lr):g}") for lr in lrs]


def full_runs(where: Path, overrides: dict[str, Any]) -> list[Path]:
    """The arm's runs at the full budget: the best rate's after a short sweep, else one per rate."""
    lrs = overrides["lr"]
    return [where / "train"] if overrides.get("sweep_tokens") is not None else [
        where / sweep_folder(lrs, lr) for lr in lrs]


def sweep_folder(lrs: list[Any], lr: Any) -> str:
    """`train` for a single run, `train-lr0.002` for each run of a sweep at the full budget."""
    return "train" if len(lrs) == 1 else f"train-lr{float(lr):g}"
