"""Where computation runs: one place that turns a --device flag into a torch device."""

from __future__ import annotations

import torch

from headstart.errors import UsageError


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
