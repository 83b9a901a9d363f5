"""One decoder-only transformer for GPT-NeoX/Pythia, GPT-2 and the Llama lineage (Llama 3, Qwen2/3, Mistral,
Phi-3, OLMo-2).

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
QK_NORMS = ("none", "head", "projection")  # head: one norm over each head's channels (Qwen3); projection: over all
NORM_POSITIONS = ("pre", "post")  # pre: x + f(norm x); post: x + norm(f x) (OLMo-2)
ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "longrope", "llama3")


@dataclass
class LayerShape:
    """The widths of one transformer layer."""

    n_head: int  # query heads
    n_kv: int  # key/value groups; n_head is a multiple of it (GQA), equal for multi-head attention
    mlp: int  # MLP hidden neurons


@dataclass
class DecoderConfig:
    family: str  # the Hugging Face model_type it maps to (a key of headstart.model.families.FAMILIES)
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
    rope_scaling: dict | None = None  # transformers' rope_parameters beyond theta: rope_type, factor, ...
    max_positions: int = 2048
    tie_embeddings: bool = False
    qk_norm: str = "none"  # RMSNorm on queries and keys before RoPE, one of QK_NORMS
    norm_position: str = "pre"

    def __post_init__(self) -> None:
        self.layers = [s if isinstance(s, LayerShape) else LayerShape(**s) for s in self.layers]
        for name, value, allowed in (
            ("norm", self.norm, NORMS),
            ("mlp_kind", self.mlp_kind, MLP_KINDS),
            ("activation", self.activation, ACTIVATIONS),
            ("qk_norm", self.qk_norm, QK_NORMS),
            ("norm_position", self.norm_position, NORM_POSITIONS),
            ("rope_type", (self.rope_scaling or {}).get("rope_type", "default"), ROPE_TYPES),
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


def parameter_dims(config: DecoderConfig) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Every parameter of a `Decoder` (model-level names, then names within each block) and what each dim counts.

    Dims: "vocab", "positions", "E" (embedding channels), "heads" / "kv" (head_size rows per query head /
    key-value group), "mlp" (neurons), "head" (the channels of one head). Parameter counts, FLOPs and the
    slicing of sub-networks all read this one table, so a new flag that adds a weight is declared here once.
    """
    norm = ("weight", "bias") if config.norm == "layernorm" and config.norm_bias else ("weight",)
    model = {"embed.weight": ("vocab", "E")}
    if config.rotary_fraction == 0:
        model["pos_embed.weight"] = ("positions", "E")
    model |= {f"final_norm.{k}": ("E",) for k in norm}
    if not config.tie_embeddings:
        model["lm_head.weight"] = ("vocab", "E")
    block = {f"{n}.{k}": ("E",) for n in ("attn_norm", "mlp_norm") for k in norm}
    linears = [("attn.q", "heads", "E", config.qkv_bias), ("attn.k", "kv", "E", config.qkv_bias),
               ("attn.v", "kv", "E", config.qkv_bias), ("attn.o", "E", "heads", config.attn_out_bias)]
    if config.mlp_kind == "gated":
        linears.append(("mlp.gate", "mlp", "E", config.mlp_bias))
    linears += [("mlp.up", "mlp", "E", config.mlp_bias), ("mlp.down", "E", "mlp", config.mlp_bias)]
    for name, out, inp, bias in linears:
        block[f"{name}.weight"] = (out, inp)
        if bias:
            block[f"{name}.bias"] = (out,)
    if config.qk_norm != "none":
        per_head = config.qk_norm == "head"
        block |= {"attn.q_norm.weight": ("head" if per_head else "heads",),
                  "attn.k_norm.weight": ("head" if per_head else "kv",)}
    return model, block


def dim_sizes(config: DecoderConfig, shape: LayerShape | None = None) -> dict[str, int]:
    """The size of each dim of `parameter_dims`, in a layer of `shape` (model-level dims alone without one)."""
    sizes = {"vocab": config.vocab_size, "positions": config.max_positions, "E": config.n_embd,
             "head": config.head_size}
    if shape is not None:
        sizes |= {"heads": shape.n_head * config.head_size, "kv": shape.n_kv * config.head_size, "mlp": shape.mlp}
    return sizes


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
        self.qk_norm = config.qk_norm
        if config.qk_norm != "none":
            per_head = config.qk_norm == "head"
            self.q_norm = RMSNorm(hs if per_head else shape.n_head * hs, config.norm_eps)
            self.k_norm = RMSNorm(hs if per_head else shape.n_kv * hs, config.norm_eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None,
                cache: Any = None, layer: int = 0) -> torch.Tensor:
        b, t, _ = x.shape
        # one matmul for q, k and v: one large GEMM is faster than three (the weights stay separate
        # parameters, which sub-networks slice; concatenating them costs little next to the GEMM)
        bias = None if self.q.bias is None else torch.cat((self.q.bias, self.k.bias, self.v.bias))
        qkv = F.linear(x, torch.cat((self.q.weight, self.k.weight, self.v.weight)), bias)
        q, k, v = qkv.split((self.q.out_features, self.k.out_features, self.v.out_features), dim=-1)
        if self.qk_norm == "projection":
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (y.unflatten(-1, (-1, self.head_size)).transpose(1, 2) for y in (q, k, v))
        if self.qk_norm == "head":
            q, k = self.q_norm(q), self.k_norm(k)
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
        self.post_norm = config.norm_position == "post"
        self.attn_norm = _norm(config, config.n_embd)
        self.attn = Attention(config, shape)
        self.mlp_norm = _norm(config, config.n_embd)
        self.mlp = MLP(config, shape)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None,
                cache: Any = None, layer: int = 0) -> torch.Tensor:
        if self.parallel_residual:
            return x + self.attn(self.attn_norm(x), cos, sin, mask, cache, layer) + self.mlp(self.mlp_norm(x))
        if self.post_norm:
            x = x + self.attn_norm(self.attn(x, cos, sin, mask, cache, layer))
            return x + self.mlp_norm(self.mlp(x))
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
        inv_freq, scale = rope_frequencies(self.config, seq_len, device)
        freqs = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv_freq)
        angles = torch.cat((freqs, freqs), dim=-1)
        return (angles.cos() * scale).to(dtype), (angles.sin() * scale).to(dtype)

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


def rope_frequencies(config: DecoderConfig, seq_len: int, device: torch.device) -> tuple[torch.Tensor, float]:
    """RoPE's inverse frequencies [rotary_dim / 2] and the factor on cos and sin, for a sequence of `seq_len`.

    The scaled types are transformers' (modeling_rope_utils), restated so that this file needs torch alone.
    `dynamic` and `longrope` depend on the length of the sequence: transformers picks them from the longest
    position it has seen so far, this from the current call, which agrees on a fresh model.
    """
    r, theta, p = config.rotary_dim, config.rope_theta, config.rope_scaling or {}
    kind = p.get("rope_type", "default")
    original = p.get("original_max_position_embeddings", config.max_positions)
    factor = p.get("factor") or config.max_positions / original
    if kind == "dynamic" and seq_len > config.max_positions:
        theta *= (factor * seq_len / config.max_positions - (factor - 1)) ** (r / (r - 2))
    inv_freq = 1.0 / theta ** (torch.arange(0, r, 2, device=device, dtype=torch.float32) / r)
    if kind == "linear":
        return inv_freq / factor, 1.0
    if kind == "llama3":
        low, high = p["low_freq_factor"], p["high_freq_factor"]
        wavelength = 2 * math.pi / inv_freq
        smooth = (original / wavelength - low) / (high - low)
        scaled = torch.where(wavelength > original / low, inv_freq / factor, inv_freq)
        medium = (wavelength >= original / high) & (wavelength <= original / low)
        return torch.where(medium, (1 - smooth) * inv_freq / factor + smooth * inv_freq, scaled), 1.0
    if kind == "longrope":
        default = 1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(original))
        ext = torch.tensor(p["long_factor"] if seq_len > original else p["short_factor"], device=device)
        return inv_freq / ext, p.get("attention_factor") or default
    if kind == "yarn":
        return _yarn(inv_freq, r, theta, original, factor, p)
    return inv_freq, 1.0


def _yarn(inv_freq: torch.Tensor, r: int, theta: float, original: int, factor: float,
          p: dict) -> tuple[torch.Tensor, float]:
    """YaRN: interpolate the low frequencies by `factor`, keep the high ones, ramp in between; scale attention."""
    def mscale(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    def dim_of(rotations: float) -> float:
        return r * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    attention = p.get("attention_factor")
    if attention is None:
        m, m_all = p.get("mscale"), p.get("mscale_all_dim")
        attention = mscale(factor, m) / mscale(factor, m_all) if m and m_all else mscale(factor)
    low, high = dim_of(p.get("beta_fast") or 32), dim_of(p.get("beta_slow") or 1)
    if p.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, r - 1)
    ramp = ((torch.arange(r // 2, device=inv_freq.device, dtype=torch.float32) - low) / ((high - low) or 0.001))
    ramp = ramp.clamp(0, 1)
    return inv_freq / factor * ramp + inv_freq * (1 - ramp), float(attention)


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
