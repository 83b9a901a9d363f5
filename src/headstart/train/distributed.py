"""Running on one CPU or on many GPUs under torchrun: process group, DDP/FSDP2 and compile, torchtitan style.

The decoder knows nothing of this. Each function here wraps or changes an unchanged model in
one way, and the loop composes them (`parallelize`). Without torchrun everything is a no-op.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.checkpoint import checkpoint

from headstart.model.decoder import Decoder

# FSDP2 warns when a module returns a view; ours returns the gathered head weight, used out of place only.
warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
STEP_WAIT = timedelta(days=2)  # how long ranks wait for rank 0's single-process step


@dataclass(frozen=True)
class Ranks:
    """This process's place among the ranks, and its device."""

    rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False  # this init created the process group, so its close ends it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def init_ranks(device_name: str = "auto") -> Ranks:
    """Join torchrun's process group (nccl on GPUs, gloo on CPU); a plain process is rank 0 of 1. The device is
    runtime.pick_device's (`auto`: the GPU if there is one), `cuda` each rank's own."""
    from headstart.runtime import pick_device

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name)
    device = torch.device("cuda", local_rank) if device.type == "cuda" and device.index is None else device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns_group = world_size > 1 and not dist.is_initialized()
    if owns_group:
        # gloo beside nccl: host numbers are summed on the CPU, without waiting for the GPU's queue
        dist.init_process_group("cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Ranks(rank, world_size, device, owns_group)


def wait_for_main(ranks: Ranks, group: dist.ProcessGroup | None) -> None:
    """Hold every rank until rank 0 has finished a step it does alone (a no-op in a plain process)."""
    if ranks.is_distributed:
        dist.barrier(group=group)


def waiting_group(ranks: Ranks, timeout: timedelta = STEP_WAIT) -> dist.ProcessGroup | None:
    """A gloo group of every rank for `wait_for_main`, with a timeout of its own: preparing a corpus on
    rank 0 may take hours, while the main group keeps its short timeout to catch a hung collective."""
    return dist.new_group(backend="gloo", timeout=timeout) if ranks.is_distributed else None


def close_ranks(ranks: Ranks) -> None:
    """End the process group if `ranks` began it (a step inside `headstart run` leaves the run's alone)."""
    if ranks.owns_group and dist.is_initialized():
        dist.destroy_process_group()


class HiddenAndHead(nn.Module):
    """A decoder whose forward returns (final hidden states, head weight), for losses that project in chunks.

    The head weight leaves through forward so that DDP and FSDP2 see it used there: FSDP2 keeps
    the root's parameters (embedding, head, final norm) gathered from forward until backward.
    It also has the two members `evaluate_windows` and the losses use: `hidden_states` and `head_weight`.
    """

    def __init__(self, decoder: Decoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder.hidden_states(idx), self.decoder.head_weight

    def hidden_states(self, idx: torch.Tensor) -> torch.Tensor:
        return self(idx)[0]

    @property
    def head_weight(self) -> torch.Tensor:
        return self.decoder.head_weight


def apply_activation_checkpointing(decoder: Decoder) -> None:
    """Recompute each block's activations in backward instead of keeping them: memory for about a third more
    compute. The block's forward is replaced, not the block wrapped, so parameter names stay as they are."""
    for block in decoder.blocks:
        block.forward = functools.partial(checkpoint, block.forward, use_reentrant=False)


def allow_tf32(device: torch.device) -> None:
    """fp32 matrix products on TF32 tensor cores (GPUs only): what bf16 autocast leaves in fp32 runs faster."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def apply_compile(decoder: Decoder) -> None:
    """torch.compile each transformer block in place (parameter names stay as they are)."""
    for block in decoder.blocks:
        block.compile()


def apply_fsdp(module: HiddenAndHead, ranks: Ranks, param_dtype: torch.dtype | None) -> None:
    """FSDP2: shard each block, then the rest (embedding, head, final norm) as the root group."""
    mesh = dist.device_mesh.init_device_mesh(ranks.device.type, (ranks.world_size,))
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    for block in module.decoder.blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(module, mesh=mesh, mp_policy=policy)


def parallelize(module: HiddenAndHead, ranks: Ranks, parallel: str, compile_blocks: bool, trainable: bool,
                param_dtype: torch.dtype | None, activation_checkpointing: bool = False) -> nn.Module:
    """The module as the loop calls it: activation-checkpointed, compiled and/or sharded (fsdp) or replicated
    (ddp) as asked.

    A frozen module (the teacher) is left unwrapped under DDP: it has no gradients to average.
    """
    module.to(ranks.device)
    if activation_checkpointing:
        apply_activation_checkpointing(module.decoder)
    if compile_blocks:
        apply_compile(module.decoder)
    if not ranks.is_distributed:
        return module
    if parallel == "fsdp":
        apply_fsdp(module, ranks, param_dtype)
        return module
    if not trainable:
        return module
    return DistributedDataParallel(module, device_ids=[ranks.device.index] if ranks.device.type == "cuda" else None)


def unwrap(module: nn.Module) -> HiddenAndHead:
    """The HiddenAndHead inside a DDP wrapper (FSDP2 changes the module in place and needs no unwrapping)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


@contextlib.contextmanager
def gradient_sync(module: nn.Module, enabled: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on all but the last micro-batch of an accumulated step."""
    if isinstance(module, DistributedDataParallel) and not enabled:
        with module.no_sync():
            yield
        return
    if isinstance(module, FSDPModule):
        module.set_requires_gradient_sync(enabled)
    yield


def clip_gradients(module: nn.Module, max_norm: float) -> torch.Tensor:
    """Clip the global gradient norm to `max_norm` (0: measure only) and return it, sharded or not, as a
    tensor on the device (reading it would wait for the GPU)."""
    norm = torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.grad is not None],
                                          max_norm if max_norm > 0 else float("inf"))
    return norm.full_tensor() if isinstance(norm, DTensor) else norm


def all_reduce_sum(values: list[float], ranks: Ranks) -> list[float]:
    """Sums of these host numbers over all ranks (one collective, on the CPU: the GPU's queue runs on)."""
    if not ranks.is_distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier(ranks: Ranks) -> None:
    if ranks.is_distributed:
        dist.barrier()
