"""The training loop: one page for the step, one for the run around it.

A step takes global batch `index` (this rank's rows of it), splits it into micro-batches,
runs the teacher (or reads its cached logits), the student forward and the chunked loss,
accumulates gradients, clips them, and steps AdamW and the schedule. The run around it
validates, logs, checkpoints, resumes, and exports the final model as a Hugging Face folder.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from headstart.atomic import write_json_atomic
from headstart.errors import UsageError
from headstart.eval import EvalResult, evaluate_windows
from headstart.model import DecoderConfig, build_model, save_model
from headstart.model.card import read_card_facts
from headstart.progress import progress_bar
from headstart.runtime import describe_hardware
from headstart.subnet.counts import flops_per_token
from headstart.train.checkpoint import (
    full_model_state,
    list_checkpoints,
    read_checkpoint,
    restore_checkpoint,
    run_identity,
    save_checkpoint,
)
from headstart.train.config import TrainConfig
from headstart.train.distributed import (
    HiddenAndHead,
    Ranks,
    all_reduce_sum,
    clip_gradients,
    close_ranks,
    gradient_sync,
    init_ranks,
    parallelize,
    unwrap,
)
from headstart.train.inputs import RunInputs, load_inputs
from headstart.train.ledger import Ledger
from headstart.train.losses import chunked_losses
from headstart.train.metrics import MetricsLog
from headstart.train.schedule import build_scheduler
from headstart.train.teacher import Teacher, missing_logits

CONFIG_FILE = "train_config.json"  # the resolved recipe; also what marks a folder as a training run


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs by default; fp32 (no autocast) on CPUs unless asked."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


@dataclass
class Run:
    """Everything a step touches."""

    cfg: TrainConfig
    ranks: Ranks
    inputs: RunInputs
    student: nn.Module  # HiddenAndHead, compiled / DDP / FSDP2 as configured
    teacher: Teacher | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    total_steps: int
    dtype: torch.dtype | None  # autocast dtype, None for fp32
    student_fpt: float  # forward FLOPs per token
    teacher_fpt: float
    ledger: Ledger

    @property
    def tokens_per_step(self) -> int:
        return self.cfg.batch_size * self.cfg.seq_len

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.ranks.device.type, dtype=self.dtype)


def _optimizer(module: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: norms and biases are not pulled towards zero."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8)


def build_run(cfg: TrainConfig, ranks: Ranks, inputs: RunInputs) -> Run:
    dtype = autocast_dtype(cfg.precision, ranks.device)
    student = parallelize(HiddenAndHead(inputs.student), ranks, cfg.parallel, cfg.compile, trainable=True,
                          param_dtype=dtype)
    teacher = None
    teacher_fpt = 0.0
    if inputs.kd is not None:
        module = None
        if inputs.teacher is not None:
            module = parallelize(HiddenAndHead(inputs.teacher), ranks, cfg.parallel, cfg.compile, trainable=False,
                                 param_dtype=dtype)
        teacher = Teacher(module, inputs.kd, inputs.cache, cfg.loss_chunk_tokens)
        if inputs.teacher is not None:
            teacher_config = inputs.teacher.config
        else:  # reading the cache only: its record says which teacher made it
            teacher_config = DecoderConfig.from_dict(inputs.cache.teacher["config"])
        teacher_fpt = flops_per_token(teacher_config, seq_len=cfg.seq_len)
    total_steps = math.ceil(cfg.tokens / (cfg.batch_size * cfg.seq_len))
    if inputs.cache is not None and inputs.teacher is None:
        missing = inputs.cache.first_missing_step(total_steps)
        if missing is not None:
            raise missing_logits(inputs.cache, missing)
    optimizer = _optimizer(student, cfg)
    scheduler = build_scheduler(optimizer, total_steps, round(cfg.warmup_fraction * total_steps), cfg.schedule,
                                cfg.min_lr_ratio, round(cfg.decay_fraction * total_steps))
    return Run(cfg, ranks, inputs, student, teacher, optimizer, scheduler, total_steps, dtype,
               flops_per_token(inputs.student.config, seq_len=cfg.seq_len), teacher_fpt, Ledger())


@dataclass
class StepStats:
    loss: float  # the objective, per predicted token of the global batch
    ce: float
    kd: float
    grad_norm: float
    lr: float


def train_step(run: Run, index: int) -> StepStats:
    """One optimizer step on global batch `index`; every rank calls it with the same index."""
    cfg, ranks = run.cfg, run.ranks
    windows = run.inputs.train.batch(index, cfg.batch_size, cfg.seed, ranks.rank, ranks.world_size)
    rank_tokens = windows[:, 1:].numel()
    cached = run.teacher.begin_step(index, ranks.rank * windows.shape[0], windows) if run.teacher else False
    starts = range(0, windows.shape[0], cfg.micro_batch_size)
    totals = torch.zeros(3, dtype=torch.float64, device=ranks.device)  # objective, CE, KD sums on this rank
    for start in starts:
        rows = slice(start, start + cfg.micro_batch_size)
        batch = windows[rows].to(ranks.device, non_blocking=True)
        inputs, targets = batch[:, :-1], batch[:, 1:]
        with gradient_sync(run.student, enabled=start == starts[-1]):
            with run.autocast():
                teacher = run.teacher.signal(rows, inputs) if run.teacher else None
                hidden, head = run.student(inputs)
                sums = chunked_losses(hidden, head, targets, run.inputs.kd, teacher, cfg.loss_chunk_tokens)
            (sums.objective / rank_tokens).backward()
        totals += torch.stack((sums.objective.detach(), sums.ce, sums.kd))
    if run.teacher:
        run.teacher.end_step()
    grad_norm = clip_gradients(run.student, cfg.grad_clip)
    lr = run.scheduler.get_last_lr()[0]
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    ran = rank_tokens if run.teacher and not cached else 0
    objective, ce, kd, tokens, ran, read = all_reduce_sum([*totals.tolist(), rank_tokens, ran,
                                                           rank_tokens if cached else 0], ranks)
    run.ledger.add(int(tokens), run.student_fpt, run.teacher_fpt, int(ran), int(read))
    return StepStats(objective / tokens, ce / tokens, kd / tokens, grad_norm, lr)


def evaluate(run: Run) -> EvalResult:
    """Validation loss on the fixed windows (every rank runs them all: sharded layers need every rank)."""
    with run.autocast():
        return evaluate_windows(unwrap(run.student), run.inputs.validation, batch_size=run.cfg.micro_batch_size,
                                device=run.ranks.device)


def export_final(run: Run, out: Path, validation: EvalResult) -> Path:
    """OUT/final: the trained student as a Hugging Face folder with the student's tokenizer and model card."""
    state = full_model_state(unwrap(run.student))
    if run.ranks.is_main:
        decoder = build_model(run.inputs.student.config, {k.removeprefix("decoder."): v for k, v in state.items()})
        cfg = run.cfg
        kd = {"kd_loss": cfg.kd, "kd_teacher": cfg.teacher} if cfg.kd else {"kd_loss": "none (cross-entropy only)"}
        card = read_card_facts(run.inputs.student_dir) | {
            "training": {"tokens": run.total_steps * run.tokens_per_step, "data": cfg.data, **kd},
            "validation": {"loss": validation.loss, "perplexity": validation.perplexity, "tokens": validation.tokens}}
        save_model(decoder, out / "final", tokenizer_dir=run.inputs.student_dir, card=card)
    return out / "final"


def _checkpoint_to_resume(out: Path, resume: bool, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint to continue from, if any; refuses to start over a run or inside a foreign folder."""
    found = list_checkpoints(out)
    if found and not resume:
        raise UsageError(f"{out} already holds a training run (checkpoint {found[-1].name})",
                         "pass --resume to continue it, or choose a new --out")
    if not found and out.exists() and any(out.iterdir()) and not (out / CONFIG_FILE).is_file():
        raise UsageError(f"--out {out} exists and is not a training run folder", "choose a new --out")
    return read_checkpoint(found[-1], identity) if found else None


def train(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Run `cfg` to its token budget (continuing from OUT's last checkpoint with `resume`); returns the summary."""
    ranks = init_ranks()
    try:
        return _train(cfg, resume, ranks)
    finally:
        close_ranks(ranks)


def _train(cfg: TrainConfig, resume: bool, ranks: Ranks) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    compute_dtype = autocast_dtype(cfg.precision, ranks.device)
    inputs = load_inputs(cfg, ranks, teacher_dtype=compute_dtype or torch.float32)
    identity = run_identity(cfg, inputs.student.config, inputs.manifest, inputs.teacher_weights)
    payload = _checkpoint_to_resume(out, resume, identity)
    run = build_run(cfg, ranks, inputs)
    done = 0
    if payload is not None:
        done, run.ledger = restore_checkpoint(payload, run.student, run.optimizer, run.scheduler, ranks)
        del payload
    if ranks.is_main:
        write_json_atomic(out / CONFIG_FILE, cfg.to_dict())
    metrics = MetricsLog(out, ranks.is_main, done if done else None)
    bar = progress_bar(total=run.total_steps * run.tokens_per_step, initial=done * run.tokens_per_step, unit="tok",
                       unit_scale=True, desc="train", active=ranks.is_main)
    start_time = time.perf_counter()
    validation = None
    for index in range(done, run.total_steps):
        step = index + 1
        tick = time.perf_counter()
        stats = train_step(run, index)
        seconds = time.perf_counter() - tick
        if step % cfg.log_every == 0 or step == run.total_steps:
            metrics.log({"step": step, "loss": stats.loss, "ce": stats.ce, "kd": stats.kd, "lr": stats.lr,
                         "grad_norm": stats.grad_norm, "tokens_per_s": run.tokens_per_step / seconds,
                         **run.ledger.to_dict()})
        if step % cfg.eval_every == 0 or step == run.total_steps:
            validation = evaluate(run)
            metrics.log({"step": step, "val_loss": validation.loss, "val_ppl": validation.perplexity})
        if step % cfg.checkpoint_every == 0 or step == run.total_steps:
            save_checkpoint(out, step, run.student, run.optimizer, run.scheduler, run.ledger, identity, ranks,
                            cfg.keep_checkpoints)
        bar.set_postfix(loss=f"{stats.loss:.3f}", refresh=False)
        bar.update(run.tokens_per_step)
    bar.close()
    metrics.close()
    seconds = time.perf_counter() - start_time
    validation = validation or evaluate(run)
    final = export_final(run, out, validation)
    trained = (run.total_steps - done) * run.tokens_per_step
    summary = {"out": str(out), "final": str(final), "steps": run.total_steps, "resumed_at": done,
               "val_loss": validation.loss, "val_ppl": validation.perplexity, "seconds": seconds,
               "tokens_per_s": trained / seconds if seconds and trained else None, **run.ledger.to_dict(),
               "hardware": describe_hardware(ranks.device, ranks.world_size),
               "compute": "bf16 autocast" if compute_dtype else "fp32"}
    if ranks.is_main:
        write_json_atomic(out / "summary.json", summary)
    return summary
