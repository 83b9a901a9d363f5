"""Exact size and cost of a model or of a sub-network, from its config alone (nothing is built).

`param_count` equals `sum(p.numel())` of the extracted model for every family: it sums the
shapes that `decoder.parameter_dims` declares (tied embeddings once, GQA key/value widths of
the kept groups, biases, norms, QK-norms, GPT-2's position embeddings). Budgets, bins and
Pareto fronts all rest on it.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass

import torch

from headstart.model.decoder import Decoder, DecoderConfig, dim_sizes, parameter_dims
from headstart.subnet.extract import extract
from headstart.subnet.spec import SubnetSpec, student_config


def _resolve(config: DecoderConfig, spec: SubnetSpec | None) -> DecoderConfig:
    return config if spec is None else student_config(config, spec)


def param_count(config: DecoderConfig, spec: SubnetSpec | None = None) -> int:
    """Parameters of `config`, or of its sub-network `spec` when given."""
    cfg = _resolve(config, spec)
    model, block = parameter_dims(cfg)
    total = _numel(model, dim_sizes(cfg))
    return total + sum(_numel(block, dim_sizes(cfg, s)) for s in cfg.layers)


def flops_per_token(config: DecoderConfig, spec: SubnetSpec | None = None, seq_len: int = 2048) -> int:
    """Forward matmul FLOPs per token, averaged over a causal sequence of `seq_len` tokens.

    2 FLOPs per multiply-add of every weight matrix (the output head included, embedding
    look-ups excluded), plus attention scores and their weighted sum: token t attends to t
    positions, so on average (seq_len + 1) / 2. Element-wise work (norms, activations,
    softmax, biases) is not counted. Training costs about 3x this (forward + backward).
    """
    cfg = _resolve(config, spec)
    _, block = parameter_dims(cfg)
    matrices = {name: dims for name, dims in block.items() if len(dims) == 2}
    weights = cfg.vocab_size * cfg.n_embd
    attention = 0
    for s in cfg.layers:
        weights += _numel(matrices, dim_sizes(cfg, s))
        attention += 2 * s.n_head * cfg.head_size * (seq_len + 1)  # (q.k + p.v) x 2 FLOPs x (seq_len+1)/2 positions
    return 2 * weights + attention


def _numel(dims: dict[str, tuple[str, ...]], sizes: dict[str, int]) -> int:
    return sum(math.prod(sizes[d] for d in shape) for shape in dims.values())


@dataclass
class Footprint:
    params: int
    weight_bytes: int  # the weights alone, in `dtype`
    kv_cache_bytes_per_token: int  # keys and values of every layer, per generated/cached token
    training_bytes: int  # weights + gradients in `dtype` + two fp32 AdamW moments (activations excluded)

    def to_dict(self) -> dict:
        return asdict(self)


def memory_footprint(config: DecoderConfig, spec: SubnetSpec | None = None,
                     dtype: torch.dtype = torch.float32) -> Footprint:
    """Memory that a model (or sub-network) needs to hold, to serve with a KV cache, and to train."""
    cfg = _resolve(config, spec)
    n = param_count(cfg)
    size = torch.empty((), dtype=dtype).element_size()
    kv = sum(2 * s.n_kv * cfg.head_size for s in cfg.layers) * size
    return Footprint(params=n, weight_bytes=n * size, kv_cache_bytes_per_token=kv, training_bytes=n * (2 * size + 8))


@dataclass
class Latency:
    seconds: float  # median wall time of one forward pass
    tokens_per_s: float
    batch_size: int
    seq_len: int
    repeats: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.inference_mode()
def measure_latency(model: Decoder, seq_len: int = 256, batch_size: int = 1, repeats: int = 5,
                    warmup: int = 1) -> Latency:
    """Median forward time (to logits) of a standalone model on random tokens.

    Measure extracted models, not activated ones: a deployed student is dense, and an
    activated sub-network may carry strided views that run at a different speed.
    """
    device = next(model.parameters()).device
    idx = torch.randint(0, model.config.vocab_size, (batch_size, seq_len),
                        generator=torch.Generator().manual_seed(0)).to(device)
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model(idx)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return Latency(seconds=seconds, tokens_per_s=batch_size * seq_len / seconds, batch_size=batch_size,
                   seq_len=seq_len, repeats=repeats)


def spec_latency(teacher: Decoder, spec: SubnetSpec, **kwargs) -> Latency:
    """`measure_latency` of the extracted sub-network (its own dense weights)."""
    return measure_latency(extract(teacher, spec), **kwargs)
