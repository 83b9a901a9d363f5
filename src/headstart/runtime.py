"""Where computation runs: one place that turns a --device flag into a torch device, and names the hardware."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from headstart.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16")  # what autocast_dtype reads: a --precision (scoring's: fp32 or bf16)
AUTO_PRECISION_HELP = "auto is bf16 autocast on GPU, fp32 on CPU"


def pick_device(name: str = "auto") -> torch.device:
    """'auto' is the GPU when there is one, else the CPU; an unavailable device is a UsageError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}", "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no GPU is visible", "use --device cpu (or auto)")
    return device


def cpu_model() -> str:
    """The CPU's model name as Linux reports it."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")


def describe_hardware(device: torch.device, world_size: int = 1) -> str:
    """What a run's timings were measured on, in words, for its summary and a model card."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{world_size} x {name}" if world_size > 1 else name
    processes, threads = f", {world_size} processes" if world_size > 1 else "", torch.get_num_threads()
    return f"{os.cpu_count()} CPU cores ({cpu_model()}, {threads} thread{'s' * (threads != 1)}{processes})"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs by default; fp32 (no autocast) on CPUs unless asked."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def weights_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype to load a model in that only runs forward at `precision` on `device`: bf16 where it
    computes in bf16 (so a large teacher is never held as an fp32 copy), else fp32."""
    return autocast_dtype(precision, device) or torch.float32


def compute_autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """The arithmetic `precision` asks for on `device`: bf16 autocast, or plain fp32 (a no-op context)."""
    dtype = autocast_dtype(precision, device)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
