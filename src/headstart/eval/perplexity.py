"""Validation loss and perplexity of a model on a fixed set of token windows."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch

from headstart.model.decoder import Decoder
from headstart.progress import progress_bar
from headstart.train.losses import chunked_losses


@dataclass
class EvalResult:
    loss: float  # mean next-token cross-entropy, nats
    perplexity: float
    tokens: int  # predicted tokens
    seconds: float
    tokens_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def evaluate_windows(model: Decoder, windows: torch.Tensor, batch_size: int = 8, progress: bool = False,
                     device: torch.device | str | None = None) -> EvalResult:
    """Mean loss over `windows` [n, seq+1]: each window predicts its tokens 1..seq from 0..seq-1."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    start = time.perf_counter()
    batches = range(0, windows.shape[0], batch_size)
    for i in progress_bar(batches, desc="eval", unit="batch", active=progress):  # also in a log, as every long step
        batch = windows[i:i + batch_size].to(device)
        hidden = model.hidden_states(batch[:, :-1])
        total += chunked_losses(hidden, model.head_weight, batch[:, 1:]).ce.item()
        count += batch[:, 1:].numel()
    seconds = time.perf_counter() - start
    model.train(was_training)
    loss = total / max(count, 1)
    return EvalResult(loss=loss, perplexity=math.exp(min(loss, 700.0)), tokens=count, seconds=seconds,
                      tokens_per_s=count / seconds if seconds else float("inf"))
