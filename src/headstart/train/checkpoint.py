"""Atomic training checkpoints: everything a run needs to continue as if it had never stopped.

One file per checkpoint, OUT/checkpoints/step-00000100.pt, written by rank 0 through a
temporary file and a rename, holding: the student's and the optimizer's full (unsharded) state,
the scheduler, every rank's RNG, the step (which is also the data position: batches are a
function of (seed, batch index), so the next one is batch `step`), the ledger, and the run's
identity (the settings that shape its trajectory, the architecture, the data, the teacher).
Full state dicts make a checkpoint independent of the number of ranks and of DDP vs FSDP2.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from headstart.atomic import atomic_path
from headstart.data import data_identity
from headstart.errors import UsageError
from headstart.model import DecoderConfig
from headstart.train.config import TrainConfig, field_defaults
from headstart.train.distributed import Ranks, barrier
from headstart.train.ledger import Ledger

FORMAT = 1
_NAME = re.compile(r"step-(\d{8})\.pt")
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
# Settings a resumed run must share with the checkpoint: they decide what the next steps compute.
TRAJECTORY = ("tokens", "kd", "kd_weight", "temperature", "kd_top_k", "kd_until", "seq_len", "batch_size", "lr",
              "min_lr_ratio", "weight_decay", "beta1", "beta2", "schedule", "warmup_fraction", "decay_fraction",
              "grad_clip", "seed", "precision")


def run_identity(cfg: TrainConfig, student: DecoderConfig, manifest: dict[str, Any],
                 teacher_weights: str | None) -> dict[str, Any]:
    """What a checkpoint must agree with to be resumed by this run (the teacher by its weights: one
    retrained into the same folder would change the targets halfway)."""
    return {"settings": {name: getattr(cfg, name) for name in TRAJECTORY},
            "student": student.to_dict(),
            "data": data_identity(manifest),
            "teacher": teacher_weights}


def checkpoint_dir(out: str | Path) -> Path:
    return Path(out) / "checkpoints"


def list_checkpoints(out: str | Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    folder = checkpoint_dir(out)
    return sorted(p for p in folder.glob("step-*.pt") if _NAME.fullmatch(p.name)) if folder.is_dir() else []


def full_model_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded model state on CPU (a collective under FSDP2: every rank calls it; rank 0 gets it)."""
    return get_model_state_dict(module, options=_FULL)


def _rng_state(ranks: Ranks) -> list[dict[str, torch.Tensor | None]]:
    mine = {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(ranks.device) if ranks.device.type == "cuda" else None}
    if not ranks.is_distributed:
        return [mine]
    every: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(every, mine)
    return every


def save_checkpoint(out: str | Path, step: int, module: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, ledger: Ledger, identity: dict[str, Any],
                    ranks: Ranks, keep: int) -> None:
    """Write OUT/checkpoints/step-N.pt (every rank calls this; rank 0 writes) and drop all but the `keep` newest."""
    model_state, optimizer_state = get_state_dict(module, optimizer, options=_FULL)
    rng = _rng_state(ranks)
    if ranks.is_main:
        payload = {"format": FORMAT, "step": step, "identity": identity, "model": model_state,
                   "optimizer": optimizer_state, "scheduler": scheduler.state_dict(), "rng": rng,
                   "ledger": ledger.to_dict()}
        path = checkpoint_dir(out) / f"step-{step:08d}.pt"
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        for old in list_checkpoints(out)[:-keep]:
            old.unlink()
    barrier(ranks)


def read_checkpoint(path: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """Load and check a checkpoint; a corrupt one, or one of another run, is a UsageError."""
    fix = f"delete {path} to resume from the checkpoint before it, or start afresh in a new --out"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for a damaged file
        raise UsageError(f"checkpoint {path} is corrupt ({type(err).__name__})", fix) from None
    keys = ("format", "step", "identity", "model", "optimizer", "scheduler", "rng", "ledger")
    if not isinstance(payload, dict) or any(k not in payload for k in keys) or payload["format"] != FORMAT:
        raise UsageError(f"{path} is not a headstart checkpoint of format {FORMAT}", fix)
    theirs = payload["identity"]
    defaults = field_defaults()  # a setting added since the checkpoint was written had its default then
    for name, value in identity["settings"].items():
        was = theirs["settings"].get(name, defaults[name])
        if was != value:
            raise UsageError(f"checkpoint {path} was made with {name}={was!r}, "
                             f"this run asks {name}={value!r}",
                             "resume with the checkpoint's settings, or start afresh in a new --out")
    if DecoderConfig.from_dict(theirs["student"]).to_dict() != identity["student"]:  # fields added since: defaults
        raise UsageError(f"checkpoint {path} holds a student of another architecture than --student",
                         "resume with the student the run started from, or start afresh in a new --out")
    if theirs["data"] != identity["data"]:
        raise UsageError(f"checkpoint {path} was trained on other data than --data (tokenizer or token count differ)",
                         "resume with the data the run started on, or start afresh in a new --out")
    if theirs["teacher"] != identity["teacher"]:
        raise UsageError(f"checkpoint {path} was distilled from another teacher than --teacher (its weights differ)",
                         "resume with the teacher the run started from, or start afresh in a new --out")
    return payload


def restore_checkpoint(payload: dict[str, Any], module: nn.Module, optimizer: torch.optim.Optimizer,
                       scheduler: torch.optim.lr_scheduler.LRScheduler, ranks: Ranks) -> tuple[int, Ledger]:
    """Put a read checkpoint's state back; returns (completed steps, ledger).

    RNG states come back rank by rank when the number of ranks is unchanged (the data order
    depends on the step alone, so a different number of ranks still resumes the same batches).
    """
    set_state_dict(module, optimizer, model_state_dict=payload["model"], optim_state_dict=payload["optimizer"],
                   options=StateDictOptions(full_state_dict=True))
    scheduler.load_state_dict(payload["scheduler"])
    if len(payload["rng"]) == ranks.world_size:
        mine = payload["rng"][ranks.rank]
        torch.set_rng_state(mine["cpu"])
        if mine["cuda"] is not None and ranks.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], ranks.device)
    return int(payload["step"]), Ledger.from_dict(payload["ledger"])
