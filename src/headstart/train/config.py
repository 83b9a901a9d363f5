"""TrainConfig: every setting of a training run, from a recipe file (YAML/JSON) or from flags.

A recipe is a file whose keys are these fields; each field is also a flag (`lr` -> `--lr`,
`random_init` -> `--random-init`), and a flag given on the command line wins over the recipe.
"""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from headstart.errors import UsageError
from headstart.train.losses import parse_kd_loss
from headstart.train.schedule import SCHEDULES

PRECISIONS = ("auto", "fp32", "bf16")
PARALLEL = ("ddp", "fsdp")
REQUIRED = ("student", "data", "tokens", "out")


def _setting(default: Any, help: str) -> Any:
    """A dataclass field whose help text becomes its flag's."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    # what trains on what
    student: str = _setting("", "student: a Hugging Face folder (e.g. an extracted sub-network) or a short name")
    data: str = _setting("", "prepared data folder (`headstart prepare`), tokenized with the student's tokenizer")
    out: str = _setting("", "run folder: train_config.json, metrics.jsonl, tensorboard/, checkpoints/, final/")
    tokens: int | None = _setting(None, "token budget: predicted tokens to train on (e.g. 20M); sets the steps")
    random_init: bool = _setting(False, "re-initialise the student: the from-scratch baseline of its architecture")
    # distillation
    teacher: str | None = _setting(None, "teacher folder or short name; with --kd, distil from it (frozen, eval mode)")
    kd: str | None = _setting(None, "KD loss: forward_kl, reverse_kl, symmetric_kl, js, or topk_<one of them>")
    kd_weight: float = _setting(0.7, "share of the KD term in the loss: (1 - w)·CE + w·KD")
    temperature: float = _setting(1.0, "softmax temperature of both distributions in the KD term (scaled back by T²)")
    kd_top_k: int = _setting(64, "k of the topk_ losses, and of the logit cache")
    kd_until: float = _setting(1.0, "distil for this share of the steps, then train on CE alone (the teacher "
                               "stops running): KD where it pays most per FLOP")
    logit_cache: str | None = _setting(None, "teacher top-k logit cache: read where filled, filled by --teacher")
    # batches
    seq_len: int = _setting(256, "tokens per training window")
    batch_size: int = _setting(32, "windows per optimizer step, all ranks together (the global batch)")
    micro_batch_size: int = _setting(8, "windows per forward pass on one rank; the rest is gradient accumulation")
    # optimizer and schedule
    lr: float = _setting(6e-4, "peak learning rate of AdamW")
    min_lr_ratio: float = _setting(0.1, "final learning rate as a fraction of the peak")
    weight_decay: float = _setting(0.1, "AdamW weight decay of matrices (not of norms and biases)")
    beta1: float = _setting(0.9, "AdamW beta1")
    beta2: float = _setting(0.95, "AdamW beta2")
    schedule: str = _setting("cosine", "learning-rate schedule after warmup: cosine or wsd (warmup-stable-decay)")
    warmup_fraction: float = _setting(0.02, "share of the steps spent in linear warmup")
    decay_fraction: float = _setting(0.2, "wsd: share of the steps spent in the final linear decay")
    grad_clip: float = _setting(1.0, "clip the global gradient norm to this (0: no clipping)")
    # evaluation, logging, checkpoints
    eval_every: int = _setting(200, "validate every this many steps (and at step 0 and the end)")
    eval_log_spaced: bool = _setting(False, "also validate at steps 1, 2, 4, 8, ... before the first --eval-every "
                                     "step: the early curve, where a head start is decided")
    eval_tokens: int = _setting(65536, "validation tokens: the first windows of the validation split")
    stop_below: float | None = _setting(None, "stop once validation perplexity is at or below this, the schedule "
                                        "still that of the whole budget: a race to a target, as baseline arms run")
    log_every: int = _setting(1, "write training metrics every this many steps")
    checkpoint_every: int = _setting(200, "write a checkpoint every this many steps (and at the end)")
    keep_checkpoints: int = _setting(2, "how many of the newest checkpoints to keep")
    # execution
    seed: int = _setting(0, "seed of the data order and of --random-init")
    precision: str = _setting("auto", "auto (bf16 autocast on GPU, fp32 on CPU), fp32 or bf16")
    compile: bool = _setting(False, "torch.compile each transformer block")
    parallel: str = _setting("ddp", "with several ranks (torchrun): ddp, or fsdp (FSDP2; the teacher is sharded too)")
    loss_chunk_tokens: int = _setting(1024, "tokens per chunk of the loss over the vocabulary")
    activation_checkpointing: bool = _setting(False, "recompute each block's activations in backward: less memory, "
                                                     "about a third more compute")
    async_checkpoints: bool = _setting(False, "write checkpoints from a background thread while training goes on")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def uses_kd(self) -> bool:
        return self.kd is not None

    def validate(self) -> None:
        """Every check that needs no file: a UsageError names the field and a value that works."""
        missing = [name for name in REQUIRED if getattr(self, name) in (None, "")]
        if missing:
            flags = ", ".join(f"--{n.replace('_', '-')}" for n in missing)
            raise UsageError(f"missing {flags}", "give them as flags or in the --config recipe")
        for name, allowed in (("schedule", SCHEDULES), ("precision", PRECISIONS), ("parallel", PARALLEL)):
            if getattr(self, name) not in allowed:
                raise UsageError(f"--{name} {getattr(self, name)!r} is not known", f"use one of {', '.join(allowed)}")
        for name in ("tokens", "seq_len", "batch_size", "micro_batch_size", "eval_every", "eval_tokens", "log_every",
                     "checkpoint_every", "keep_checkpoints", "loss_chunk_tokens"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}",
                                 "give a positive number")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise UsageError(f"--lr {self.lr} / --min-lr-ratio {self.min_lr_ratio} are out of range",
                             "use lr > 0 and a min-lr-ratio between 0 and 1")
        if not (0 <= self.warmup_fraction < 1 and 0 <= self.decay_fraction <= 1):
            raise UsageError("--warmup-fraction and --decay-fraction must be fractions of the run",
                             "use values in [0, 1)")
        if self.kd is not None:
            parse_kd_loss(self.kd, self.temperature, self.kd_weight, self.kd_top_k)
            if self.teacher is None and self.logit_cache is None:
                raise UsageError(f"--kd {self.kd} needs a teacher", "add --teacher T, or --logit-cache DIR")
        elif self.teacher is not None or self.logit_cache is not None:
            raise UsageError("--teacher / --logit-cache given without --kd",
                             "add --kd LOSS (e.g. forward_kl) to distil, or drop them to train on CE alone")
        if self.stop_below is not None and self.stop_below <= 0:
            raise UsageError(f"--stop-below {self.stop_below} is not a perplexity", "give a value above 0")
        if not 0 < self.kd_until <= 1:
            raise UsageError(f"--kd-until {self.kd_until} is not a share of the steps", "use a value in (0, 1]")
        if self.logit_cache is not None and not self.kd.startswith("topk_"):
            raise UsageError(f"a logit cache holds top-k logits, which --kd {self.kd} cannot use",
                             f"use --kd topk_{self.kd}, or drop --logit-cache")


def field_types() -> dict[str, type]:
    """The scalar type of every field (`str | None` -> str): what a flag or a recipe value is parsed as."""
    hints = get_type_hints(TrainConfig)
    types = {}
    for f in fields(TrainConfig):
        hint = hints[f.name]
        types[f.name] = next(t for t in getattr(hint, "__args__", (hint,)) if t is not type(None))
    return types


def field_help() -> dict[str, str]:
    return {f.name: f.metadata["help"] for f in fields(TrainConfig)}


def field_defaults() -> dict[str, Any]:
    return {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


_SUFFIX = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}


def parse_count(text: str | int | float) -> int:
    """A whole number, also as 2e6 or with a k/M/B/T suffix (`--tokens 20M`)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = re.fullmatch(r"\s*([-+]?[0-9.eE+-]+)\s*([kKmMbBgGtT]?)\s*", str(text))
    try:
        value = float(match.group(1)) * _SUFFIX.get(match.group(2).lower(), 1) if match else float("nan")
    except ValueError:
        value = float("nan")
    if value != value or value != int(value):
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def parse_value(name: str, value: Any) -> Any:
    """A recipe or flag value as the type of field `name`; a wrong one is a UsageError."""
    kind = field_types()[name]
    if value is None:
        return None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "1", "false", "no", "0"):
                return str(value).lower() in ("true", "yes", "1")
            raise ValueError(value)
        if kind is int:
            return parse_count(value)
        return kind(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name}={value!r} is not a valid {kind.__name__}",
                         f"give {name} a {kind.__name__} value") from None


def read_mapping(path: str | Path, what: str = "a YAML or JSON file of TrainConfig fields") -> dict[str, Any]:
    """The top-level mapping of a YAML (.yaml/.yml) or JSON file; anything else is a UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"recipe {path} does not exist", f"give {what}")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml  # comes with transformers

            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as err:  # yaml and json raise their own error types
        raise UsageError(f"recipe {path} cannot be parsed ({type(err).__name__})", "fix its syntax") from None
    if not isinstance(raw, dict):
        raise UsageError(f"recipe {path} is not a mapping of fields", "write `field: value` lines")
    return raw


def load_recipe(path: str | Path) -> dict[str, Any]:
    """The fields of a YAML or JSON recipe; unknown keys are a UsageError (a typo must not pass silently)."""
    raw = read_mapping(path)
    unknown = sorted(set(raw) - set(field_types()))
    if unknown:
        raise UsageError(f"recipe {path} has unknown fields {', '.join(unknown)}",
                         f"use fields of TrainConfig: {', '.join(field_types())}")
    return raw


def make_config(recipe: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the recipe, then the overrides (flags); parsed and validated."""
    values = field_defaults() | (recipe or {}) | (overrides or {})
    cfg = TrainConfig(**{name: parse_value(name, value) for name, value in values.items()})
    cfg.validate()
    return cfg
