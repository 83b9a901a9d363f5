"""The baseline arms a recipe can ask for, and what each changes of the student's own recipe.

    random            the student's architecture from random initialisation, cross-entropy only
    random_kd         the same, with the recipe's KD
    subnet_ce         the searched sub-network, cross-entropy only
    firstk_kd         the importance-ordered first-k sub-network at the same budget (no search), with KD
    random_search_kd  the best of as many random-search evaluations as the search made, with KD

Everything else (data order, seed, schedule, batch, tokens, validation windows) is the student's,
so that the arms differ only in where they start and what they learn from. An arm may override
training fields; `lr: [1e-3, 2e-3]` trains one run per rate and keeps the best final perplexity.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from headstart.errors import UsageError

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


def _closest(name: str) -> str:
    near = difflib.get_close_matches(name, ARMS, n=1)
    return f"did you mean {near[0]}? " if near else ""


def parse_baselines(raw: Any, train: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """`baselines:` of a recipe -> {arm: its training overrides, with `lr` a list}; refuses what cannot run."""
    if raw is None:
        return {}
    if isinstance(raw, list):
        raw = dict.fromkeys(raw)
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: baselines is not a mapping",
                         f"write `arm: {{}}` lines for arms of {', '.join(ARMS)}")
    arms: dict[str, dict[str, Any]] = {}
    for name, overrides in raw.items():
        if name not in ARMS:
            raise UsageError(f"{where}: baseline {name!r} is unknown", f"{_closest(name)}use {', '.join(ARMS)}")
        overrides = dict(overrides or {})
        if not isinstance(overrides, dict):
            raise UsageError(f"{where}: baselines.{name} is not a mapping", "give it training fields, e.g. lr: [1e-3]")
        if name == "subnet_ce" and not train.get("kd"):
            raise UsageError(f"{where}: baseline subnet_ce is the student itself when train sets no kd",
                             "drop the arm, or add `kd: forward_kl` under train")
        if ARMS[name].kd and not train.get("kd"):
            raise UsageError(f"{where}: baseline {name} distils with the recipe's KD, and train sets no kd",
                             "add `kd: forward_kl` under train, or drop the arm")
        lrs = overrides.pop("lr", student_lr(train))
        lrs = lrs if isinstance(lrs, list) else [lrs]
        if not lrs or any(isinstance(lr, bool) or not isinstance(lr, int | float | str | None) for lr in lrs):
            raise UsageError(f"{where}: baselines.{name}.lr is not a rate or a list of rates", "write lr: [1e-3, 2e-3]")
        taken = sorted(k for k in overrides if k in ("student", "data", "out", "teacher", "resume", "config",
                                                      "random_init", *KD_FIELDS))
        if taken:
            raise UsageError(f"{where}: baselines.{name}.{taken[0]} is set by the arm itself",
                             f"remove it; {name} is defined as: {ARMS[name].label}")
        arms[name] = {**overrides, "lr": lrs}
    return arms


def student_lr(train: dict[str, Any]) -> Any:
    """The learning rate of the student's training section, or training's default."""
    from headstart.train.config import TrainConfig

    return train.get("lr", TrainConfig.lr)


def arm_train_section(train: dict[str, Any], arm: Arm, overrides: dict[str, Any], lr: Any) -> dict[str, Any]:
    """The student's training section, changed only where the arm differs."""
    section = {k: v for k, v in train.items() if arm.kd or k not in KD_FIELDS}
    section |= {k: v for k, v in overrides.items() if k != "lr"}
    section["lr"] = lr
    if arm.random_init:
        section["random_init"] = True
    return section


def sweep_folder(lrs: list[Any], lr: Any) -> str:
    """`train` for a single run, `train-lr0.002` for each run of a sweep."""
    return "train" if len(lrs) == 1 else f"train-lr{float(lr):g}"
