"""The training loop: one page for the step, one for the run around it.

A step takes global batch `index` (this rank's rows of it), splits it into micro-batches,
runs the teacher (or reads its cached logits), the student forward and the chunked loss,
accumulates gradients, clips them, and steps AdamW and the schedule. The run around it
validates, logs, checkpoints, resumes, and exports the final model as a Hugging Face folder.
"""

from __future__ import annotations

import contextlib
import math
import sys
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
from headstart.runtime import autocast_dtype, compute_autocast, describe_hardware
from headstart.subnet.counts import flops_per_token
from headstart.train.checkpoint import (
    Checkpointer,
    full_model_state,
    list_checkpoints,
    read_checkpoint,
    restore_checkpoint,
    run_identity,
)
from headstart.train.config import TrainConfig
from headstart.train.distributed import (
    HiddenAndHead,
    Ranks,
    all_reduce_sum,
    allow_tf32,
    clip_gradients,
    close_ranks,
    gradient_sync,
    init_ranks,
    parallelize,
    unwrap,
)
from headstart.train.fused_kd import check_liger_available, step_losses
from headstart.train.inputs import RunInputs, load_inputs
from headstart.train.ledger import Ledger
from headstart.train.metrics import MetricsLog, read_metrics
from headstart.train.schedule import build_scheduler
from headstart.train.teacher import Teacher, missing_logits
from headstart.train.throughput import IntervalMeter

CONFIG_FILE = "train_config.json"  # the resolved recipe; also what marks a folder as a training run


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
        return compute_autocast(self.ranks.device, self.cfg.precision)


def _optimizer(module: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: norms and biases are not pulled towards zero.

    On GPUs the fused kernel updates every parameter in a few launches instead of several per tensor.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8,
                             fused=True if device.type == "cuda" else None)


def build_run(cfg: TrainConfig, ranks: Ranks, inputs: RunInputs) -> Run:
    if inputs.kd is not None and cfg.kd_kernel == "liger":  # TrainConfig.check asks too; train() may skip it
        check_liger_available()
    dtype = autocast_dtype(cfg.precision, ranks.device)
    if cfg.precision != "fp32":  # fp32 asked for by name stays exact fp32
        allow_tf32(ranks.device)
    student = parallelize(HiddenAndHead(inputs.student), ranks, cfg.parallel, cfg.compile, trainable=True,
                          param_dtype=dtype, activation_checkpointing=cfg.activation_checkpointing)
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
    optimizer = _optimizer(student, cfg, ranks.device)
    scheduler = build_scheduler(optimizer, total_steps, round(cfg.warmup_fraction * total_steps), cfg.schedule,
                                cfg.min_lr_ratio, round(cfg.decay_fraction * total_steps))
    return Run(cfg, ranks, inputs, student, teacher, optimizer, scheduler, total_steps, dtype,
               flops_per_token(inputs.student.config, seq_len=cfg.seq_len), teacher_fpt, Ledger())


@dataclass
class StepStats:
    """One step's numbers. The loss sums and the gradient norm stay on the device until `read`, at log
    steps only: reading them waits for the GPU to finish its queue."""

    totals: torch.Tensor  # objective, CE, KD sums over this rank's predicted tokens
    tokens: int  # predicted tokens of the global batch
    grad_norm: torch.Tensor
    lr: float

    def read(self, ranks: Ranks) -> dict[str, float]:
        """Loss, CE and KD per predicted token of the global batch, and the gradient norm (every rank calls it)."""
        objective, ce, kd = all_reduce_sum(self.totals.tolist(), ranks)
        return {"loss": objective / self.tokens, "ce": ce / self.tokens, "kd": kd / self.tokens, "lr": self.lr,
                "grad_norm": self.grad_norm.item()}


def train_step(run: Run, index: int) -> StepStats:
    """One optimizer step on global batch `index`; every rank calls it with the same index."""
    cfg, ranks = run.cfg, run.ranks
    windows = run.inputs.train.batch(index, cfg.batch_size, cfg.seed, ranks.rank, ranks.world_size)
    if ranks.device.type == "cuda":  # a copy from pinned memory does not wait for the GPU to finish its queue
        windows = windows.pin_memory()
    rank_tokens = windows[:, 1:].numel()
    teacher = run.teacher if index < math.ceil(cfg.kd_until * run.total_steps) else None  # KD, then CE alone
    kd_loss = run.inputs.kd if teacher else None
    cached = teacher.begin_step(index, ranks.rank * windows.shape[0], windows) if teacher else False
    losses = step_losses(cfg.kd_kernel, kd_loss)
    starts = range(0, windows.shape[0], cfg.micro_batch_size)
    totals = torch.zeros(3, dtype=torch.float64, device=ranks.device)  # objective, CE, KD sums on this rank
    for start in starts:
        rows = slice(start, start + cfg.micro_batch_size)
        batch = windows[rows].to(ranks.device, non_blocking=True)
        inputs, targets = batch[:, :-1], batch[:, 1:]
        with gradient_sync(run.student, enabled=start == starts[-1]):
            with run.autocast():
                signal = teacher.signal(rows, inputs) if teacher else None
                hidden, head = run.student(inputs)
                sums = losses(hidden, head, targets, kd_loss, signal, cfg.loss_chunk_tokens)
            (sums.objective / rank_tokens).backward()
        totals += torch.stack((sums.objective.detach(), sums.ce, sums.kd))
    if teacher:
        teacher.end_step()
    grad_norm = clip_gradients(run.student, cfg.grad_clip)
    lr = run.scheduler.get_last_lr()[0]
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    ran = rank_tokens if teacher and not cached else 0
    tokens, ran, read = all_reduce_sum([rank_tokens, ran, rank_tokens if cached else 0], ranks)
    run.ledger.add(int(tokens), run.student_fpt, run.teacher_fpt, int(ran), int(read))
    return StepStats(totals, int(tokens), grad_norm, lr)


def model_flops(ledger: Ledger) -> float:
    """The model arithmetic a run has done: the student's forwards and backwards and the teacher's forwards."""
    return ledger.student_flops + ledger.teacher_flops


def evaluate(run: Run) -> EvalResult:
    """Validation loss on the fixed windows (every rank runs them all: sharded layers need every rank)."""
    with run.autocast():
        return evaluate_windows(unwrap(run.student), run.inputs.validation, batch_size=run.cfg.micro_batch_size,
                                device=run.ranks.device)


def validation_steps(total_steps: int, eval_every: int, log_spaced: bool) -> set[int]:
    """The steps after which to validate: 0 (the untrained model), every `eval_every`th, the last, and with
    `log_spaced` the powers of two below the first `eval_every` step."""
    steps = {0, total_steps, *range(eval_every, total_steps + 1, eval_every)}
    if log_spaced:
        steps |= {2**k for k in range(max(eval_every, 1).bit_length()) if 2**k < min(eval_every, total_steps)}
    return steps


def export_final(run: Run, out: Path, validation: EvalResult) -> Path:
    """OUT/final: the trained student as a Hugging Face folder with the student's tokenizer and model card."""
    state = full_model_state(unwrap(run.student))
    if run.ranks.is_main:
        decoder = build_model(run.inputs.student.config, {k.removeprefix("decoder."): v for k, v in state.items()})
        cfg = run.cfg
        kd = {"kd_loss": cfg.kd, "kd_teacher": cfg.teacher} if cfg.kd else {"kd_loss": "none (cross-entropy only)"}
        if cfg.kd and cfg.kd_until < 1:
            kd["kd_until"] = f"{cfg.kd_until:g} of the steps, then cross-entropy alone"
        card = read_card_facts(run.inputs.student_dir) | {
            "training": {"tokens": run.ledger.tokens, "data": cfg.data, **kd},
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
    ranks = init_ranks(cfg.device)
    if cfg.parallel == "fsdp" and not ranks.is_distributed:
        print("train: warning: --parallel fsdp shards the model over ranks, and this is one process: nothing is "
              "sharded (start it with torchrun --nproc-per-node N)", file=sys.stderr)
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
    checkpointer = Checkpointer(out, ranks, cfg.keep_checkpoints, cfg.async_checkpoints)
    bar = progress_bar(total=run.total_steps * run.tokens_per_step, initial=done * run.tokens_per_step, unit="tok",
                       unit_scale=True, desc="train", active=ranks.is_main)
    start_time = time.perf_counter()
    validation = None
    validate_at = validation_steps(run.total_steps, cfg.eval_every, cfg.eval_log_spaced)

    def validate(step: int) -> EvalResult:
        result = evaluate(run)
        metrics.log({"step": step, "val_loss": result.loss, "val_ppl": result.perplexity, **run.ledger.to_dict()})
        return result

    def reached(perplexity: float) -> bool:  # --stop-below: the race's target, at or below
        return cfg.stop_below is not None and perplexity <= cfg.stop_below

    stopped = None  # the step at which the run reached --stop-below
    if done == 0:
        validation = validate(0)
        stopped = 0 if reached(validation.perplexity) else None
    elif any(r.get("step") == done and reached(r["val_ppl"]) for r in read_metrics(out / "metrics.jsonl")
             if "val_ppl" in r):
        stopped = done  # it had stopped there
    meter = IntervalMeter(ranks.device, ranks.world_size)
    meter.restart(run.ledger.tokens, model_flops(run.ledger))
    for index in range(done, run.total_steps if stopped is None else done):
        step = index + 1
        stats = train_step(run, index)
        if step % cfg.log_every == 0 or step == run.total_steps:
            numbers = stats.read(ranks)  # waits for the step to finish
            metrics.log({"step": step, **numbers, **meter.read(run.ledger.tokens, model_flops(run.ledger)),
                         **run.ledger.to_dict()})
            bar.set_postfix(loss=f"{numbers['loss']:.3f}", refresh=False)
        evaluated = step in validate_at
        if evaluated:
            validation = validate(step)
        checkpointed = step % cfg.checkpoint_every == 0 or step == run.total_steps
        if evaluated and reached(validation.perplexity):
            stopped, checkpointed = step, True  # checkpointed here, so that a rerun knows it stopped
        if checkpointed:
            checkpointer.save(step, run.student, run.optimizer, run.scheduler, run.ledger, identity)
        if evaluated or checkpointed:
            meter.restart(run.ledger.tokens, model_flops(run.ledger))
        bar.update(run.tokens_per_step)
        if stopped is not None:
            break
    checkpointer.finish()
    bar.close()
    metrics.close()
    seconds = time.perf_counter() - start_time
    validation = validation or evaluate(run)
    final = export_final(run, out, validation)
    trained = ((run.total_steps if stopped is None else stopped) - done) * run.tokens_per_step
    summary = {"out": str(out), "final": str(final), "steps": run.total_steps, "resumed_at": done,
               "stopped_at": stopped,
               "val_loss": validation.loss, "val_ppl": validation.perplexity, "seconds": seconds,
               "tokens_per_s": trained / seconds if seconds and trained else None, **run.ledger.to_dict(),
               "hardware": describe_hardware(ranks.device, ranks.world_size),
               "compute": "bf16 autocast" if compute_dtype else "fp32"}
    if ranks.is_main:
        write_json_atomic(out / "summary.json", summary)
    return summary
