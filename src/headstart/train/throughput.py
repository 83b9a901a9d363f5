"""Model FLOPs utilisation: the FLOPs a run's model arithmetic needs per second, over the device's peak.

Peaks are the vendors' dense bf16 tensor-core figures (no sparsity) per GPU; a device not in
the table (and every CPU) has no MFU rather than a guessed one.
"""

from __future__ import annotations

import time

import torch

# (substring of torch.cuda.get_device_name, dense bf16 FLOP/s); the first match wins, so variants come first
PEAK_BF16 = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM
    ("H200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
)


def peak_flops(device: torch.device) -> float | None:
    """The device's dense bf16 peak in FLOP/s, or None when it is not a GPU in the table."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for part, peak in PEAK_BF16 if part in name), None)


def model_flops_utilisation(flops: float, seconds: float, peak: float | None, world_size: int = 1) -> float | None:
    """Share of `world_size` devices' peak that `flops` of model arithmetic in `seconds` used (None: unknown)."""
    if peak is None or seconds <= 0:
        return None
    return flops / seconds / (peak * world_size)


class IntervalMeter:
    """Tokens/s and MFU over the steps since the last reading: timing each step apart would make the
    host wait for the GPU every step. Work that is not training (validation, checkpoints) is left out
    by restarting the interval after it."""

    def __init__(self, device: torch.device, world_size: int) -> None:
        self.peak = peak_flops(device)
        self.world_size = world_size
        self.restart(0, 0.0)

    def restart(self, tokens: int, flops: float) -> None:
        self._start = (time.perf_counter(), tokens, flops)

    def read(self, tokens: int, flops: float) -> dict[str, float]:
        """tokens_per_s, and mfu where the device's peak is known, since the last restart (then restarts)."""
        began, tokens_then, flops_then = self._start
        seconds = time.perf_counter() - began
        self.restart(tokens, flops)
        rates = {"tokens_per_s": (tokens - tokens_then) / seconds}
        mfu = model_flops_utilisation(flops - flops_then, seconds, self.peak, self.world_size)
        return rates if mfu is None else rates | {"mfu": mfu}
