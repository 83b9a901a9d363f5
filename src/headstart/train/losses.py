"""Cross-entropy and distillation losses over the full vocabulary, computed chunk by chunk.

Both models hand over their final hidden states and head weights, never logits. Each chunk of
tokens is projected to [chunk, vocab] logits, scored, and differentiated right there (autograd
on the chunk alone gives d loss / d logits, two matmuls turn it into the gradients of the
hidden states and of the head); then the chunk's logits are dropped. So neither model's
[batch, seq, vocab] logits are ever held whole, and backward recomputes nothing: it only
scales the gradients the forward already made.

With p the teacher's and q the student's distribution at temperature T (both softmax(logits / T)):
    forward_kl    KL(p || q)
    reverse_kl    KL(q || p)
    symmetric_kl  (KL(p || q) + KL(q || p)) / 2
    js            Jensen-Shannon divergence: (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2
Each is multiplied by T² so its gradient keeps its size as T changes (Hinton et al.). The
`topk_` variants compare both distributions renormalised over the teacher's k most likely
tokens: all a top-k logit cache holds. The training loss is (1 - w)·CE + w·KD, w a constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from headstart.errors import UsageError

DIVERGENCES = ("forward_kl", "reverse_kl", "symmetric_kl", "js")
KD_LOSSES = (*DIVERGENCES, *(f"topk_{name}" for name in DIVERGENCES))


@dataclass(frozen=True)
class KDLoss:
    """Which distillation loss, and how it mixes with the cross-entropy."""

    divergence: str  # one of DIVERGENCES
    top_k: int | None  # None: the full vocabulary
    temperature: float
    weight: float  # share of the KD term: loss = (1 - weight)·CE + weight·KD


def parse_kd_loss(name: str, temperature: float, weight: float, top_k: int) -> KDLoss:
    """The loss a user named; an unknown name or a meaningless setting is a UsageError."""
    if name not in KD_LOSSES:
        raise UsageError(f"unknown distillation loss {name!r}", f"use one of {', '.join(KD_LOSSES)}")
    if temperature <= 0:
        raise UsageError(f"temperature {temperature} is not positive", "use a temperature above 0, e.g. 1")
    if not 0 <= weight <= 1:
        raise UsageError(f"KD weight {weight} is outside [0, 1]", "use a weight between 0 (CE only) and 1 (KD only)")
    truncated = name.startswith("topk_")
    if truncated and top_k < 1:
        raise UsageError(f"{name} needs a positive --kd-top-k, got {top_k}", "use e.g. --kd-top-k 64")
    return KDLoss(name.removeprefix("topk_"), top_k if truncated else None, temperature, weight)


@dataclass
class TeacherHidden:
    """The teacher's final hidden states [tokens, n_embd] and head [vocab, n_embd]: full-vocabulary KD."""

    hidden: torch.Tensor
    head_weight: torch.Tensor


@dataclass
class TeacherTopK:
    """The teacher's k largest logits per token [tokens, k] (descending) and their vocabulary ids."""

    values: torch.Tensor
    indices: torch.Tensor


TeacherSignal = TeacherHidden | TeacherTopK


@dataclass
class LossSums:
    """Sums over `tokens` predicted tokens (sums, so chunks, micro-batches and ranks add up).

    Only `objective`, the (1 - w)·CE + w·KD mix with a constant w, carries a gradient; `ce` and
    `kd` are its parts, for the record. (whittle's adaptive weight CE/KD kept its gradient and
    so cancelled the KD term's; a constant weight cannot.)
    """

    objective: torch.Tensor
    ce: torch.Tensor
    kd: torch.Tensor
    tokens: int


def divergence(name: str, log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Per-row divergence between teacher log-probs `log_p` and student log-probs `log_q` (last dim)."""
    if name == "forward_kl":
        return (log_p.exp() * (log_p - log_q)).sum(-1)
    if name == "reverse_kl":
        return (log_q.exp() * (log_q - log_p)).sum(-1)
    if name == "symmetric_kl":
        return 0.5 * ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(-1)
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
    return 0.5 * ((log_p.exp() * (log_p - log_m)).sum(-1) + (log_q.exp() * (log_q - log_m)).sum(-1))


def _chunk_scores(logits: torch.Tensor, targets: torch.Tensor, kd: KDLoss | None, t_hidden: torch.Tensor | None,
                  t_head: torch.Tensor | None, t_values: torch.Tensor | None,
                  t_indices: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed CE and KD of one chunk, from the student's fp32 logits [chunk, vocab].

    At temperature 1 over the full vocabulary, CE and KD share one log-softmax: every
    [chunk, vocab] temporary spared is memory the chunk size can have instead.
    """
    log_q = F.log_softmax(logits, dim=-1)
    ce = F.nll_loss(log_q, targets, reduction="sum")
    if kd is None:
        return ce, torch.zeros_like(ce)
    if t_values is None:
        with torch.no_grad():
            t_logits = F.linear(t_hidden, t_head).float()
    else:
        t_logits = t_values[:, :kd.top_k].float()
        logits = logits.gather(-1, t_indices[:, :kd.top_k].long())
    if kd.top_k is not None or kd.temperature != 1:
        log_q = F.log_softmax(_cooled(logits, kd.temperature), dim=-1)
    log_p = F.log_softmax(_cooled(t_logits, kd.temperature), dim=-1)
    return ce, divergence(kd.divergence, log_p, log_q).sum() * kd.temperature**2


def _cooled(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return logits if temperature == 1 else logits / temperature


class _ChunkedLoss(torch.autograd.Function):
    """(objective, ce, kd) sums of every chunk; the gradients are made in forward, one chunk at a time."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, head_weight: torch.Tensor, targets: torch.Tensor, kd: KDLoss | None,
                teacher: TeacherSignal | None, chunk_tokens: int) -> tuple[torch.Tensor, ...]:
        want_hidden, want_head = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_hidden = torch.empty_like(hidden) if want_hidden else None  # every row is written below
        grad_head = None  # fp32 sum over the chunks, started by the first
        sums = torch.zeros(3, dtype=torch.float32, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk_tokens):
            rows = slice(start, start + chunk_tokens)
            chunk = hidden[rows]
            with torch.enable_grad():
                logits = F.linear(chunk, head_weight).float().requires_grad_(want_hidden or want_head)
                ce, kd_sum = _chunk_scores(logits, targets[rows], kd, *_teacher_rows(teacher, rows))
                objective = ce if kd is None else (1 - kd.weight) * ce + kd.weight * kd_sum
            if logits.requires_grad:
                (grad_logits,) = torch.autograd.grad(objective, logits)
                grad_logits = grad_logits.to(chunk.dtype)
                if want_hidden:
                    grad_hidden[rows] = grad_logits @ head_weight.to(chunk.dtype)
                if want_head:
                    part = grad_logits.T @ chunk
                    grad_head = part.float() if grad_head is None else grad_head.add_(part)
            sums += torch.stack((objective.detach(), ce.detach(), kd_sum.detach()))
        ctx.save_for_backward(grad_hidden, grad_head)
        ctx.head_dtype = head_weight.dtype
        objective, ce, kd_sum = sums.unbind()
        ctx.mark_non_differentiable(ce, kd_sum)
        return objective, ce, kd_sum

    @staticmethod
    def backward(ctx, grad_objective: torch.Tensor, _ce: torch.Tensor, _kd: torch.Tensor):
        grad_hidden, grad_head = ctx.saved_tensors
        return (None if grad_hidden is None else grad_hidden * grad_objective.to(grad_hidden.dtype),
                None if grad_head is None else (grad_head * grad_objective).to(ctx.head_dtype),
                None, None, None, None)


def chunked_losses(hidden: torch.Tensor, head_weight: torch.Tensor, targets: torch.Tensor, kd: KDLoss | None = None,
                   teacher: TeacherSignal | None = None, chunk_tokens: int = 1024) -> LossSums:
    """Summed CE (and KD against `teacher`) of the student's `hidden` [..., n_embd] projected by `head_weight`.

    Peak memory is a few [chunk_tokens, vocab] fp32 tensors plus the gradients of `hidden` and
    `head_weight`, which backward would need anyway.
    """
    if (kd is None) != (teacher is None):
        raise ValueError("a KD loss needs a teacher signal and a teacher signal needs a KD loss")
    if kd is not None and kd.top_k is not None and not isinstance(teacher, TeacherTopK):
        raise ValueError("a top-k loss needs the teacher's top-k logits (teacher_topk or the logit cache)")
    targets = targets.reshape(-1)
    if not torch.is_grad_enabled():  # evaluation: make no gradients
        hidden, head_weight = hidden.detach(), head_weight.detach()
    objective, ce, kd_sum = _ChunkedLoss.apply(hidden.reshape(-1, hidden.shape[-1]), head_weight, targets, kd,
                                               teacher, chunk_tokens)
    return LossSums(objective, ce, kd_sum, targets.numel())


def _teacher_rows(teacher: TeacherSignal | None, rows: slice) -> tuple[torch.Tensor | None, ...]:
    """(hidden, head, top-k values, top-k indices) of the teacher for some token rows; absent parts are None."""
    if teacher is None:
        return None, None, None, None
    if isinstance(teacher, TeacherHidden):
        return teacher.hidden.reshape(-1, teacher.hidden.shape[-1])[rows], teacher.head_weight, None, None
    k = teacher.values.shape[-1]
    return None, None, teacher.values.reshape(-1, k)[rows], teacher.indices.reshape(-1, k)[rows]


@torch.no_grad()
def teacher_topk(hidden: torch.Tensor, head_weight: torch.Tensor, k: int,
                 chunk_tokens: int = 1024) -> TeacherTopK:
    """The teacher's top-k logits of every token of `hidden` [..., n_embd], chunk by chunk: what the cache stores."""
    flat = hidden.reshape(-1, hidden.shape[-1])
    parts = [F.linear(flat[i:i + chunk_tokens], head_weight).float().topk(k, dim=-1)
             for i in range(0, flat.shape[0], chunk_tokens)]
    values = torch.cat([p.values for p in parts]).reshape(*hidden.shape[:-1], k)
    indices = torch.cat([p.indices for p in parts]).to(torch.int32).reshape(*hidden.shape[:-1], k)
    return TeacherTopK(values, indices)
