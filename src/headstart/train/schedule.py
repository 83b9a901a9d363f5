"""Learning-rate schedules: linear warmup, then cosine decay or warmup-stable-decay (WSD).

A schedule is a multiplier of the peak learning rate as a function of the optimizer step, so
it is plain data to check in a test and lives in the checkpoint as the scheduler's step count.
"""

from __future__ import annotations

import math
from functools import partial

import torch

SCHEDULES = ("cosine", "wsd")


def lr_multiplier(step: int, total_steps: int, warmup_steps: int, schedule: str, min_ratio: float,
                  decay_steps: int) -> float:
    """Multiplier of the peak lr for optimizer step `step` (0-based) of `total_steps`.

    cosine: warmup, then half a cosine from 1 down to `min_ratio` at the last step.
    wsd: warmup, 1 until the last `decay_steps` steps, then linear down to `min_ratio` at the last step.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        progress = (step + 1 - warmup_steps) / max(total_steps - warmup_steps, 1)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    decay_start = total_steps - decay_steps
    if step < decay_start:
        return 1.0
    progress = (step + 1 - decay_start) / max(decay_steps, 1)
    return 1 - (1 - min_ratio) * min(progress, 1.0)


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, schedule: str,
                    min_ratio: float, decay_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR over `lr_multiplier`; its state (the step count) goes into checkpoints."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_multiplier, total_steps=total_steps, warmup_steps=warmup_steps, schedule=schedule,
                           min_ratio=min_ratio, decay_steps=decay_steps))
