"""One decoder-only transformer for GPT-NeoX/Pythia, Llama (GQA, SmolLM2, Qwen2-style) and GPT-2.

Family differences are config flags, not subclasses, and every layer carries its own
widths (query heads, key/value groups, MLP neurons), which is what sub-networks need.

This file depends on torch alone: it is copied verbatim into exported Hugging Face folders
of students whose shape no stock transformers architecture can hold, so keep it that way.
Generation's KV cache is any object with transformers' `Cache` interface (`update`, `get_seq_length`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("layernorm", "rmsnorm")
MLP_KINDS = ("plain", "gated")
ACTIVATIONS = ("gelu", "gelu_tanh", "silu", "relu")


@dataclass
class LayerShape:
    """The widths of one transformer layer."""

    n_head: int  # query heads
    n_kv: int  # key/value groups; n_head is a multiple of it (GQA), equal for multi-head attention
    mlp: int  # MLP hidden neurons


@dataclass
class DecoderConfig:
    family: str  # the Hugging Face architecture it maps to: "gpt_neox", "llama" or "gpt2"
    vocab_size: int
    n_embd: int
    head_size: int
    layers: list[LayerShape] = field(default_factory=list)
    norm: str = "layernorm"
    norm_eps: float = 1e-5
    mlp_kind: str = "plain"  # plain: down(act(up x)); gated: down(act(gate x) * up x)
    activation: str = "gelu"
    parallel_residual: bool = False  # GPT-NeoX: x + attn(n1 x) + mlp(n2 x)
    qkv_bias: bool = False
    attn_out_bias: bool = False
    mlp_bias: bool = False
    norm_bias: bool = True  # LayerNorm bias (RMSNorm has none)
    rotary_fraction: float = 1.0  # share of each head's channels that get RoPE; 0 = learned positions
    rope_theta: float = 10000.0
    max_positions: int = 2048
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        self.layers = [s if isinstance(s, LayerShape) else LayerShape(**s) for s in self.layers]
        for name, value, allowed in (
            ("norm", self.norm, NORMS),
            ("mlp_kind", self.mlp_kind, MLP_KINDS),
            ("activation", self.activation, ACTIVATIONS),
        ):
            if value not in allowed:
                raise ValueError(f"{name}={value!r}, expected one of {allowed}")
        for i, s in enumerate(self.layers):
            if min(s.n_head, s.n_kv, s.mlp) < 1 or s.n_head % s.n_kv:
                raise ValueError(f"layer {i}: {s} needs n_head, n_kv, mlp >= 1 and n_head % n_kv == 0")

    @property
    def n_layer(self) -> int:
        return len(self.layers)

    @property
    def rotary_dim(self) -> int:
        return int(self.head_size * self.rotary_fraction) // 2 * 2

    @property
    def is_uniform(self) -> bool:
        """True when every layer has the same widths (a stock HF architecture may hold it)."""
        return all(s == self.layers[0] for s in self.layers)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DecoderConfig:
        return cls(**d)


def _norm(config: DecoderConfig, width: int) -> nn.Module:
    if config.norm == "rmsnorm":
        return RMSNorm(width, config.norm_eps)
    return nn.LayerNorm(width, eps=config.norm_eps, bias=config.norm_bias)


class RMSNorm(nn.Module):
    """RMSNorm computed in fp32 and cast back, as Llama does."""

    def __init__(self, width: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def _activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "gelu":
        return F.gelu(x)
    if name == "gelu_tanh":
        return F.gelu(x, approximate="tanh")
    if name == "silu":
        return F.silu(x)
    return F.relu(x)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first `cos.shape[-1]` channels of each head; the rest pass through (partial RoPE)."""
    r = cos.shape[-1]
    if r == 0:
        return x
    rot, rest = x[..., :r], x[..., r:]
    rot = rot * cos + _rotate_half(rot) * sin
    return torch.cat((rot, rest), dim=-1) if rest.shape[-1] else rot


def attention_mask(padding: torch.Tensor | None, q_len: int, past: int, device: torch.device) -> torch.Tensor | None:
    """Which keys each query may see, [batch or 1, 1, q_len, past + q_len]: the causal ones not padded.

    `padding` [batch, past + q_len] is 1 for real tokens and 0 for padding (transformers' 2D
    attention_mask). None where plain causal attention is right, which SDPA's `is_causal` runs
    faster. Every query also sees itself, so that a padding row is never all masked (its softmax
    would be NaN, and 0 * NaN spreads to the real rows through the next layer's values).
    """
    if padding is None and (past == 0 or q_len == 1):
        return None
    keys = torch.arange(past + q_len, device=device)
    queries = torch.arange(past, past + q_len, device=device)[:, None]
    allowed = (keys <= queries)[None]
    if padding is not None:
        allowed = (allowed & padding[:, None, :].bool()) | (keys == queries)
    return allowed[:, None]


class Attention(nn.Module):
    def __init__(self, config: DecoderConfig, shape: LayerShape) -> None:
        super().__init__()
        hs, e = config.head_size, config.n_embd
        self.n_head, self.n_kv, self.head_size = shape.n_head, shape.n_kv, hs
        self.q = nn.Linear(e, shape.n_head * hs, bias=config.qkv_bias)
        self.k = nn.Linear(e, shape.n_kv * hs, bias=config.qkv_bias)
        self.v = nn.Linear(e, shape.n_kv * hs, bias=config.qkv_bias)
        self.o = nn.Linear(shape.n_head * hs, e, bias=config.attn_out_bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None,
                cache: Any = None, layer: int = 0) -> torch.Tensor:
        b, t, _ = x.shape
        # one matmul for q, k and v: one large GEMM is faster than three (the weights stay separate
        # parameters, which sub-networks slice; concatenating them costs little next to the GEMM)
        bias = None if self.q.bias is None else torch.cat((self.q.bias, self.k.bias, self.v.bias))
        qkv = F.linear(x, torch.cat((self.q.weight, self.k.weight, self.v.weight)), bias)
        q, k, v = (y.unflatten(-1, (-1, self.head_size)).transpose(1, 2)
                   for y in qkv.split((self.q.out_features, self.k.out_features, self.v.out_features), dim=-1))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:  # generation: the keys and values of the tokens before, and these kept for later
            k, v = cache.update(k, v, layer)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None and t == k.shape[2],
                                           enable_gqa=self.n_kv != self.n_head)
        return self.o(y.transpose(1, 2).reshape(b, t, self.n_head * self.head_size))


class MLP(nn.Module):
    def __init__(self, config: DecoderConfig, shape: LayerShape) -> None:
        super().__init__()
        e = config.n_embd
        self.activation = config.activation
        self.up = nn.Linear(e, shape.mlp, bias=config.mlp_bias)
        self.gate = nn.Linear(e, shape.mlp, bias=config.mlp_bias) if config.mlp_kind == "gated" else None
        self.down = nn.Linear(shape.mlp, e, bias=config.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is None:
            return self.down(_activation(self.activation, self.up(x)))
        return self.down(_activation(self.activation, self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, config: DecoderConfig, shape: LayerShape) -> None:
        super().__init__()
        self.parallel_residual = config.parallel_residual
        self.attn_norm = _norm(config, config.n_embd)
        self.attn = Attention(config, shape)
        self.mlp_norm = _norm(config, config.n_embd)
        self.mlp = MLP(config, shape)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None,
                cache: Any = None, layer: int = 0) -> torch.Tensor:
        if self.parallel_residual:
            return x + self.attn(self.attn_norm(x), cos, sin, mask, cache, layer) + self.mlp(self.mlp_norm(x))
        x = x + self.attn(self.attn_norm(x), cos, sin, mask, cache, layer)
        return x + self.mlp(self.mlp_norm(x))


class Decoder(nn.Module):
    """Token ids [batch, seq] -> logits [batch, seq, vocab] (or the final hidden states)."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_embed = nn.Embedding(config.max_positions, config.n_embd) if config.rotary_fraction == 0 else None
        self.blocks = nn.ModuleList(Block(config, s) for s in config.layers)
        self.final_norm = _norm(config, config.n_embd)
        self.lm_head = None if config.tie_embeddings else nn.Linear(config.n_embd, config.vocab_size, bias=False)

    @property
    def head_weight(self) -> torch.Tensor:
        """The output projection [vocab, n_embd]: the embedding itself when tied."""
        return self.embed.weight if self.lm_head is None else self.lm_head.weight

    def rope(self, seq_len: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin [seq, rotary_dim], computed per call: no buffer to lose when built on the meta device."""
        r = self.config.rotary_dim
        inv_freq = 1.0 / self.config.rope_theta ** (torch.arange(0, r, 2, device=device, dtype=torch.float32) / r)
        freqs = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv_freq)
        angles = torch.cat((freqs, freqs), dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def hidden_states(self, idx: torch.Tensor, positions: torch.Tensor | None = None,
                      padding: torch.Tensor | None = None, cache: Any = None) -> torch.Tensor:
        """The final-norm output [batch, seq, n_embd]; logits are `hidden @ head_weight.T`.

        Losses over large vocabularies project it chunk by chunk instead of asking for logits.
        Batches of left-padded sequences (generation, scoring) pass `positions` [batch, seq] of
        each token, `padding` (1 = token, 0 = pad) over the cached tokens and these, and the cache.
        """
        t = idx.shape[1]
        past = cache.get_seq_length() if cache is not None else 0
        x = self.embed(idx)
        if positions is None:  # one table for the batch, without a device sync
            cos, sin = (table[past:] for table in self.rope(past + t, idx.device, x.dtype))
            positions = torch.arange(past, past + t, device=idx.device)
        else:
            cos, sin = (table[positions].unsqueeze(1) for table in self.rope(int(positions.max()) + 1, idx.device,
                                                                               x.dtype))
        if self.pos_embed is not None:
            x = x + self.pos_embed(positions)
        mask = attention_mask(padding, t, past, idx.device)
        for layer, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, cache, layer)
        return self.final_norm(x)

    def forward(self, idx: torch.Tensor, positions: torch.Tensor | None = None, padding: torch.Tensor | None = None,
                cache: Any = None) -> torch.Tensor:
        return F.linear(self.hidden_states(idx, positions, padding, cache), self.head_weight)


def init_weights(model: Decoder, seed: int, std: float = 0.02) -> None:
    """Random initialisation for from-scratch baselines: N(0, std), residual outputs scaled by depth."""
    gen = torch.Generator().manual_seed(seed)
    out_std = std / math.sqrt(2 * max(model.config.n_layer, 1))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                s = out_std if name.endswith(("attn.o.weight", "mlp.down.weight")) else std
                p.copy_(torch.randn(p.shape, generator=gen) * s)
