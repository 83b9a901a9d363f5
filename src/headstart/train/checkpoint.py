"""Sharded, atomic training checkpoints through torch.distributed.checkpoint (DCP), torchtitan style.

One folder per checkpoint, OUT/checkpoints/step-00000100/:
  .metadata, __R_0.distcp  the student's and the optimizer's state, every rank writing its own shards (DCP)
  run_state.pt             written by rank 0: the format, the step (which is also the data position:
                           batches are a function of (seed, batch index), so the next one is batch
                           `step`), the scheduler, every rank's RNG, the ledger, and the run's identity
DCP records each tensor by its name and global shape, so a checkpoint written by N ranks (DDP or
FSDP2) loads on M ranks, each reading the pieces of its own shards. Every rank writes into
.step-00000100.tmp, which rank 0 renames once the checkpoint is whole; with `asynchronous`, the
state is copied to CPU memory and written by a background thread while training goes on, and the
rename waits until the write has finished (at the next checkpoint or at the end of the run).
"""

from __future__ import annotations

import re
import shutil
import warnings
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from headstart.atomic import disk_failures
from headstart.data import data_identity
from headstart.errors import UsageError
from headstart.model import DecoderConfig
from headstart.settings import defaults as field_defaults
from headstart.train.config import TrainConfig
from headstart.train.distributed import Ranks, barrier
from headstart.train.ledger import Ledger

# DCP warns on every save and load in a plain process that it assumes one process: it is right.
warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
FORMAT = 2
RUN_STATE = "run_state.pt"
_NAME = re.compile(r"step-(\d{8})")
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
    """The run's finished checkpoints, oldest first (temporary folders of unfinished ones are not among them)."""
    folder = checkpoint_dir(out)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.fullmatch(p.name) and p.is_dir())


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


def write_checkpoint_files(folder: Path, tensors: dict[str, Any], run_state: dict[str, Any] | None,
                           process_group: dist.ProcessGroup | None, asynchronous: bool) -> Future | None:
    """Every write of a checkpoint: rank 0's `run_state` (None on other ranks) and every rank's shards of
    `tensors`. Returns the pending write when `asynchronous`, else None once everything is on disk."""
    if run_state is not None:
        torch.save(run_state, folder / RUN_STATE)
    try:
        if asynchronous:
            return dcp.async_save(tensors, checkpoint_id=folder, process_group=process_group)
        dcp.save(tensors, checkpoint_id=folder, process_group=process_group)
    except CheckpointException as err:  # DCP wraps each rank's failure; a disk's is raised as itself
        raise next((e for e, _ in err.failures.values() if isinstance(e, OSError | RuntimeError)), err) from None
    return None


class Checkpointer:
    """Writes a run's checkpoints, keeps the `keep` newest, and finishes a pending asynchronous one."""

    def __init__(self, out: str | Path, ranks: Ranks, keep: int, asynchronous: bool = False) -> None:
        self.folder = checkpoint_dir(out)
        self.ranks = ranks
        self.keep = keep
        self.asynchronous = asynchronous
        # an asynchronous write gathers its ranks from a background thread, so it needs a CPU group of its own
        self.group = dist.new_group(backend="gloo") if asynchronous and ranks.is_distributed else None
        self._pending: tuple[Future, Path, Path] | None = None  # (write, temporary folder, final folder)
        if ranks.is_main and self.folder.is_dir():  # unfinished checkpoints of a run that was stopped
            for stale in self.folder.glob(".step-*"):
                shutil.rmtree(stale, ignore_errors=True)
        barrier(ranks)

    def save(self, step: int, module: nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LRScheduler, ledger: Ledger, identity: dict[str, Any]) -> None:
        """Write checkpoint `step` (every rank calls this); returns before the write ends when asynchronous."""
        self.finish()
        model_state, optimizer_state = get_state_dict(module, optimizer)
        rng = _rng_state(self.ranks)
        final = self.folder / f"step-{step:08d}"
        tmp = self.folder / f".{final.name}.tmp"
        run_state = None
        if self.ranks.is_main:
            run_state = {"format": FORMAT, "step": step, "identity": identity, "scheduler": scheduler.state_dict(),
                         "rng": rng, "ledger": ledger.to_dict()}
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        barrier(self.ranks)
        try:
            with disk_failures(final):  # a full disk: one line, the checkpoints before it intact
                pending = write_checkpoint_files(tmp, {"model": model_state, "optimizer": optimizer_state},
                                                 run_state, self.group, self.asynchronous)
        except BaseException:
            if self.ranks.is_main:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        if pending is None:
            self._publish(tmp, final)
        else:
            self._pending = (pending, tmp, final)

    def finish(self) -> None:
        """Wait for a pending asynchronous checkpoint and publish it (every rank calls this)."""
        if self._pending is None:
            return
        pending, tmp, final = self._pending
        self._pending = None
        pending.result()  # on rank 0 this returns once every rank's shards and the metadata are written
        self._publish(tmp, final)

    def _publish(self, tmp: Path, final: Path) -> None:
        """Rank 0 renames the whole checkpoint into place, then drops all but the `keep` newest."""
        barrier(self.ranks)
        if self.ranks.is_main:
            tmp.rename(final)
            for old in list_checkpoints(self.folder.parent)[:-self.keep]:
                doomed = old.with_name(f".{old.name}.old")  # never a half-deleted folder under a checkpoint's name
                old.rename(doomed)
                shutil.rmtree(doomed)
        barrier(self.ranks)


def _corrupt(path: Path, err: BaseException) -> UsageError:
    return UsageError(f"checkpoint {path} is corrupt ({type(err).__name__})",
                      f"delete {path} to resume from the checkpoint before it, or start afresh in a new --out")


def read_checkpoint(path: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """Load and check a checkpoint's run state; a corrupt one, or one of another run, is a UsageError."""
    fix = f"delete {path} to resume from the checkpoint before it, or start afresh in a new --out"
    try:
        payload = torch.load(path / RUN_STATE, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for a damaged or missing file
        raise _corrupt(path, err) from None
    keys = ("format", "step", "identity", "scheduler", "rng", "ledger")
    if not isinstance(payload, dict) or any(k not in payload for k in keys) or payload["format"] != FORMAT:
        raise UsageError(f"{path} is not a headstart checkpoint of format {FORMAT}", fix)
    theirs = payload["identity"]
    defaults = field_defaults(TrainConfig)  # a setting added since the checkpoint was written had its default then
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
    return payload | {"path": path}


def restore_checkpoint(payload: dict[str, Any], module: nn.Module, optimizer: torch.optim.Optimizer,
                       scheduler: torch.optim.lr_scheduler.LRScheduler, ranks: Ranks) -> tuple[int, Ledger]:
    """Put a read checkpoint's state back (every rank reads its own shards); returns (completed steps, ledger).

    RNG states come back rank by rank when the number of ranks is unchanged (the data order
    depends on the step alone, so a different number of ranks still resumes the same batches).
    """
    model_state, optimizer_state = get_state_dict(module, optimizer)
    tensors = {"model": model_state, "optimizer": optimizer_state}
    try:
        dcp.load(tensors, checkpoint_id=payload["path"])
    except (Exception, CheckpointException) as err:  # DCP hands every rank a damaged shard's error, of any type
        raise _corrupt(payload["path"], err) from None
    set_state_dict(module, optimizer, model_state_dict=tensors["model"], optim_state_dict=tensors["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    if len(payload["rng"]) == ranks.world_size:
        mine = payload["rng"][ranks.rank]
        torch.set_rng_state(mine["cpu"])
        if mine["cuda"] is not None and ranks.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], ranks.device)
    return int(payload["step"]), Ledger.from_dict(payload["ledger"])
