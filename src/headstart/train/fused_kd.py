"""The KD loss through liger-kernel's fused linear + distillation loss: an option on CUDA (`--kd-kernel liger`)
beside `losses.chunked_losses`, which stays the default and the reference.

liger's `LigerFusedLinearJSDFunction` (liger_kernel.chunked_loss.jsd_loss) projects both models' hidden
states through their heads chunk by chunk, as ours does, one compiled step per chunk, and returns
    weight_hard · CE / N + weight_soft · D_β / N     (N the tokens; with return_soft_hard_loss also CE / N, D_β / N)
where CE is on the student's untempered logits and D_β(p, q) = β·KL(p || m) + (1 - β)·KL(q || m),
m = β·p + (1 - β)·q, on both models' logits divided by T; β = 0 is computed as KL(p || q) and β = 1 as
KL(q || p) exactly. Our objective (1 - w)·CE + w·T²·D is so liger's with weight_hard = 1 - w,
weight_soft = w·T², times N, and
    forward_kl: β = 0     reverse_kl: β = 1     js: β = 0.5
symmetric_kl, the mean of both KLs, is no single β, and the topk_ losses (and the logit cache) compare
distributions over the teacher's top k, which liger does not: both are refused, never approximated.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from headstart.errors import UsageError
from headstart.train.losses import KDLoss, LossSums, TeacherHidden, TeacherSignal, chunked_losses

KD_KERNELS = ("chunked", "liger")
LIGER_BETA = {"forward_kl": 0.0, "reverse_kl": 1.0, "js": 0.5}  # our divergence -> liger's beta
NO_LABEL = -100  # liger's ignore_index: no target of ours is negative, so every token counts
USE_CHUNKED = "or use --kd-kernel chunked (the default)"


def check_liger_loss(kd: KDLoss) -> None:
    """Refuse a loss liger cannot compute exactly as ours (a file-free check: TrainConfig.validate)."""
    if kd.top_k is not None:
        raise UsageError(f"--kd-kernel liger computes full-vocabulary losses, not topk_{kd.divergence}",
                         f"use --kd {kd.divergence} with it, {USE_CHUNKED}")
    if kd.divergence not in LIGER_BETA:
        raise UsageError(f"--kd {kd.divergence} has no exact equivalent in liger (its beta gives "
                         f"{', '.join(LIGER_BETA)})", f"use one of those with --kd-kernel liger, {USE_CHUNKED}")


def liger_function() -> type[torch.autograd.Function]:
    """liger's fused linear + distillation loss, or a UsageError naming how to get it."""
    try:
        from liger_kernel.chunked_loss.jsd_loss import LigerFusedLinearJSDFunction
    except ImportError:
        raise UsageError("--kd-kernel liger needs liger-kernel, which is not installed",
                         f"pip install 'headstart[liger]', {USE_CHUNKED}") from None
    return LigerFusedLinearJSDFunction


def check_liger_available() -> None:
    """liger is used on CUDA only (its compiled steps are tuned for GPUs; on a CPU ours is the loss)."""
    if not torch.cuda.is_available():
        raise UsageError("--kd-kernel liger needs a CUDA GPU, and none is visible", USE_CHUNKED.removeprefix("or "))
    liger_function()


def liger_installed() -> bool:
    try:
        liger_function()
    except UsageError:
        return False
    return True


def liger_losses(hidden: torch.Tensor, head_weight: torch.Tensor, targets: torch.Tensor, kd: KDLoss,
                 teacher: TeacherSignal, chunk_tokens: int = 1024, compiled: bool = True) -> LossSums:
    """`chunked_losses`' sums of a full-vocabulary KD loss, computed by liger (`compiled`: its torch.compile)."""
    check_liger_loss(kd)
    if not isinstance(teacher, TeacherHidden):
        raise ValueError("liger needs the teacher's hidden states and head, not its top-k logits")
    targets = targets.reshape(-1).long()
    n = targets.numel()
    objective, kd_mean, ce_mean = liger_function().apply(
        hidden.reshape(-1, hidden.shape[-1]), head_weight, teacher.hidden.reshape(-1, teacher.hidden.shape[-1]),
        teacher.head_weight, targets, None, None, 1 - kd.weight, kd.weight * kd.temperature**2,
        LIGER_BETA[kd.divergence], NO_LABEL, kd.temperature, compiled, chunk_tokens, True)
    return LossSums(objective * n, ce_mean.detach() * n, kd_mean.detach() * (n * kd.temperature**2), n)


def step_losses(kernel: str, kd: KDLoss | None) -> Callable[..., LossSums]:
    """The loss of a training step: liger's for a KD step when asked for, else ours (CE-only steps always)."""
    return liger_losses if kernel == "liger" and kd is not None else chunked_losses
