"""Hugging Face <-> headstart, one small mapping per family: config fields and weight names.

Adding a family means adding one `Family` here: how its config.json reads into a
`DecoderConfig`, how its weights map onto ours, and the reverse for export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from headstart.errors import UsageError
from headstart.model.decoder import DecoderConfig, LayerShape

StateDict = dict[str, torch.Tensor]


def _rope(raw: dict, default_fraction: float) -> tuple[float, float]:
    """(theta, rotary fraction) from either the v4 (flat) or v5 (`rope_parameters`) config layout."""
    params = raw.get("rope_parameters") or {}
    scaling = raw.get("rope_scaling") or {}
    rope_type = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if rope_type != "default":
        raise UsageError(
            f"RoPE scaling {rope_type!r} is not supported yet",
            "use a checkpoint with plain RoPE (rope_type 'default')",
        )
    theta = params.get("rope_theta", raw.get("rope_theta", raw.get("rotary_emb_base", 10000.0)))
    fraction = params.get("partial_rotary_factor", raw.get("rotary_pct", raw.get("partial_rotary_factor")))
    return float(theta), float(default_fraction if fraction is None else fraction)


def _uniform_layers(n_layer: int, n_head: int, n_kv: int, mlp: int) -> list[LayerShape]:
    return [LayerShape(n_head=n_head, n_kv=n_kv, mlp=mlp) for _ in range(n_layer)]


_HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "silu": "silu",
                   "relu": "relu", "gelu_fast": "gelu_tanh"}


def _activation(name: str) -> str:
    if name not in _HF_ACTIVATIONS:
        raise UsageError(f"activation {name!r} is not supported", f"use one of {sorted(_HF_ACTIVATIONS)}")
    return _HF_ACTIVATIONS[name]


# ---------------------------------------------------------------- GPT-NeoX / Pythia

def neox_config(raw: dict) -> DecoderConfig:
    e, h = raw["hidden_size"], raw["num_attention_heads"]
    theta, fraction = _rope(raw, 0.25)
    bias = raw.get("attention_bias", True)
    return DecoderConfig(
        family="gpt_neox", vocab_size=raw["vocab_size"], n_embd=e, head_size=e // h,
        layers=_uniform_layers(raw["num_hidden_layers"], h, h, raw.get("intermediate_size") or 4 * e),
        norm="layernorm", norm_eps=raw.get("layer_norm_eps", 1e-5), mlp_kind="plain",
        activation=_activation(raw.get("hidden_act", "gelu")),
        parallel_residual=raw.get("use_parallel_residual", True), qkv_bias=bias, attn_out_bias=bias,
        mlp_bias=True, rotary_fraction=fraction, rope_theta=theta,
        max_positions=raw.get("max_position_embeddings", 2048), tie_embeddings=raw.get("tie_word_embeddings", False),
    )


def neox_to_ours(sd: StateDict, cfg: DecoderConfig) -> StateDict:
    out = {"embed.weight": sd["gpt_neox.embed_in.weight"], "final_norm.weight": sd["gpt_neox.final_layer_norm.weight"],
           "final_norm.bias": sd["gpt_neox.final_layer_norm.bias"]}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = sd["embed_out.weight"]
    for i, s in enumerate(cfg.layers):
        p, q = f"gpt_neox.layers.{i}.", f"blocks.{i}."
        # fused qkv is laid out per head: [head][q|k|v][head_size]
        w = sd[p + "attention.query_key_value.weight"].view(s.n_head, 3, cfg.head_size, cfg.n_embd)
        for j, name in enumerate("qkv"):
            out[q + f"attn.{name}.weight"] = w[:, j].reshape(-1, cfg.n_embd)
        if cfg.qkv_bias:
            b = sd[p + "attention.query_key_value.bias"].view(s.n_head, 3, cfg.head_size)
            for j, name in enumerate("qkv"):
                out[q + f"attn.{name}.bias"] = b[:, j].reshape(-1)
        _rename(sd, out, p, q, {
            "input_layernorm": "attn_norm", "post_attention_layernorm": "mlp_norm", "attention.dense": "attn.o",
            "mlp.dense_h_to_4h": "mlp.up", "mlp.dense_4h_to_h": "mlp.down"})
    return out


def neox_from_ours(sd: StateDict, cfg: DecoderConfig) -> StateDict:
    out = {"gpt_neox.embed_in.weight": sd["embed.weight"], "gpt_neox.final_layer_norm.weight": sd["final_norm.weight"],
           "gpt_neox.final_layer_norm.bias": sd["final_norm.bias"]}
    if not cfg.tie_embeddings:
        out["embed_out.weight"] = sd["lm_head.weight"]
    for i, s in enumerate(cfg.layers):
        p, q = f"gpt_neox.layers.{i}.", f"blocks.{i}."
        parts = [sd[q + f"attn.{n}.weight"].view(s.n_head, 1, cfg.head_size, cfg.n_embd) for n in "qkv"]
        out[p + "attention.query_key_value.weight"] = torch.cat(parts, 1).reshape(-1, cfg.n_embd)
        if cfg.qkv_bias:
            parts = [sd[q + f"attn.{n}.bias"].view(s.n_head, 1, cfg.head_size) for n in "qkv"]
            out[p + "attention.query_key_value.bias"] = torch.cat(parts, 1).reshape(-1)
        _rename(sd, out, q, p, {
            "attn_norm": "input_layernorm", "mlp_norm": "post_attention_layernorm", "attn.o": "attention.dense",
            "mlp.up": "mlp.dense_h_to_4h", "mlp.down": "mlp.dense_4h_to_h"})
    return out


def neox_hf_config(cfg: DecoderConfig) -> dict:
    s = cfg.layers[0]
    return {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.n_embd, "num_hidden_layers": cfg.n_layer, "num_attention_heads": s.n_head,
            "intermediate_size": s.mlp, "hidden_act": _hf_activation(cfg.activation),
            "layer_norm_eps": cfg.norm_eps, "use_parallel_residual": cfg.parallel_residual,
            "rotary_pct": cfg.rotary_fraction, "rotary_emb_base": cfg.rope_theta,
            "attention_bias": cfg.qkv_bias, "max_position_embeddings": cfg.max_positions,
            "tie_word_embeddings": cfg.tie_embeddings}


def neox_expressible(cfg: DecoderConfig) -> bool:
    s = cfg.layers[0]
    return (cfg.n_embd == s.n_head * cfg.head_size and s.n_kv == s.n_head and cfg.norm == "layernorm"
            and cfg.mlp_kind == "plain" and cfg.mlp_bias and cfg.qkv_bias == cfg.attn_out_bias
            and cfg.rotary_fraction > 0 and cfg.norm_bias)


# ---------------------------------------------------------------- Llama (SmolLM2) and Qwen2

def llama_config(raw: dict) -> DecoderConfig:
    e, h = raw["hidden_size"], raw["num_attention_heads"]
    theta, fraction = _rope(raw, 1.0)
    qwen = raw.get("model_type") == "qwen2"
    attention_bias = raw.get("attention_bias", False)
    return DecoderConfig(
        family="qwen2" if qwen else "llama", vocab_size=raw["vocab_size"], n_embd=e,
        head_size=raw.get("head_dim") or e // h,
        layers=_uniform_layers(raw["num_hidden_layers"], h, raw.get("num_key_value_heads") or h,
                               raw["intermediate_size"]),
        norm="rmsnorm", norm_eps=raw.get("rms_norm_eps", 1e-6), mlp_kind="gated",
        activation=_activation(raw.get("hidden_act", "silu")), parallel_residual=False,
        qkv_bias=qwen or attention_bias, attn_out_bias=attention_bias and not qwen,
        mlp_bias=raw.get("mlp_bias", False), norm_bias=False, rotary_fraction=fraction, rope_theta=theta,
        max_positions=raw.get("max_position_embeddings", 2048),
        tie_embeddings=raw.get("tie_word_embeddings", False),
    )


_LLAMA_NAMES = {"input_layernorm": "attn_norm", "post_attention_layernorm": "mlp_norm",
                "self_attn.q_proj": "attn.q", "self_attn.k_proj": "attn.k", "self_attn.v_proj": "attn.v",
                "self_attn.o_proj": "attn.o", "mlp.gate_proj": "mlp.gate", "mlp.up_proj": "mlp.up",
                "mlp.down_proj": "mlp.down"}


def llama_to_ours(sd: StateDict, cfg: DecoderConfig) -> StateDict:
    out = {"embed.weight": sd["model.embed_tokens.weight"], "final_norm.weight": sd["model.norm.weight"]}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    for i in range(cfg.n_layer):
        _rename(sd, out, f"model.layers.{i}.", f"blocks.{i}.", _LLAMA_NAMES)
    return out


def llama_from_ours(sd: StateDict, cfg: DecoderConfig) -> StateDict:
    out = {"model.embed_tokens.weight": sd["embed.weight"], "model.norm.weight": sd["final_norm.weight"]}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    reverse = {v: k for k, v in _LLAMA_NAMES.items()}
    for i in range(cfg.n_layer):
        _rename(sd, out, f"blocks.{i}.", f"model.layers.{i}.", reverse)
    return out


def llama_hf_config(cfg: DecoderConfig) -> dict:
    s = cfg.layers[0]
    qwen = cfg.family == "qwen2"
    d = {"architectures": ["Qwen2ForCausalLM" if qwen else "LlamaForCausalLM"],
         "model_type": "qwen2" if qwen else "llama", "vocab_size": cfg.vocab_size, "hidden_size": cfg.n_embd,
         "num_hidden_layers": cfg.n_layer, "num_attention_heads": s.n_head, "num_key_value_heads": s.n_kv,
         "head_dim": cfg.head_size, "intermediate_size": s.mlp, "hidden_act": _hf_activation(cfg.activation),
         "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta, "max_position_embeddings": cfg.max_positions,
         "tie_word_embeddings": cfg.tie_embeddings}
    if not qwen:
        d |= {"attention_bias": cfg.qkv_bias, "mlp_bias": cfg.mlp_bias}
    return d


def llama_expressible(cfg: DecoderConfig) -> bool:
    qwen_bias = cfg.qkv_bias and not cfg.attn_out_bias and not cfg.mlp_bias
    llama_bias = cfg.qkv_bias == cfg.attn_out_bias
    return (cfg.norm == "rmsnorm" and cfg.mlp_kind == "gated" and not cfg.parallel_residual
            and cfg.rotary_fraction == 1.0 and (qwen_bias if cfg.family == "qwen2" else llama_bias))


# ---------------------------------------------------------------- GPT-2

def gpt2_config(raw: dict) -> DecoderConfig:
    if raw.get("scale_attn_by_inverse_layer_idx") or not raw.get("scale_attn_weights", True):
        raise UsageError("this GPT-2 config scales attention in a non-standard way",
                         "use a checkpoint with scale_attn_weights=true and scale_attn_by_inverse_layer_idx=false")
    e, h = raw["n_embd"], raw["n_head"]
    return DecoderConfig(
        family="gpt2", vocab_size=raw["vocab_size"], n_embd=e, head_size=e // h,
        layers=_uniform_layers(raw["n_layer"], h, h, raw.get("n_inner") or 4 * e),
        norm="layernorm", norm_eps=raw.get("layer_norm_epsilon", 1e-5), mlp_kind="plain",
        activation=_activation(raw.get("activation_function", "gelu_new")), parallel_residual=False,
        qkv_bias=True, attn_out_bias=True, mlp_bias=True, rotary_fraction=0.0,
        max_positions=raw.get("n_positions", 1024), tie_embeddings=raw.get("tie_word_embeddings", True),
    )


# GPT-2 stores Linear weights transposed (Conv1D: [in, out]).
_GPT2_NAMES = {"ln_1": "attn_norm", "ln_2": "mlp_norm", "attn.c_proj": "attn.o", "mlp.c_fc": "mlp.up",
               "mlp.c_proj": "mlp.down"}
_GPT2_CONV1D = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


def _transpose_conv1d(sd: StateDict) -> StateDict:
    """Conv1D [in, out] <-> Linear [out, in], as contiguous tensors (a transpose is its own inverse)."""
    return {k: (v.t().contiguous() if k.endswith(".weight") and any(c in k for c in _GPT2_CONV1D) else v)
            for k, v in sd.items()}


def gpt2_to_ours(sd: StateDict, cfg: DecoderConfig) -> StateDict:
    sd = _transpose_conv1d({k.removeprefix("transformer."): v for k, v in sd.items()})
    out = {"embed.weight": sd["wte.weight"], "pos_embed.weight": sd["wpe.weight"],
           "final_norm.weight": sd["ln_f.weight"], "final_norm.bias": sd["ln_f.bias"]}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    for i, s in enumerate(cfg.layers):
        p, q = f"h.{i}.", f"blocks.{i}."
        sizes = [s.n_head * cfg.head_size, s.n_kv * cfg.head_size, s.n_kv * cfg.head_size]
        for kind in ("weight", "bias"):
            for name, part in zip("qkv", sd[p + f"attn.c_attn.{kind}"].split(sizes), strict=True):
                out[q + f"attn.{name}.{kind}"] = part
        _rename(sd, out, p, q, _GPT2_NAMES)
    return out


def gpt2_from_ours(sd: StateDict, cfg: DecoderConfig) -> StateDict:
    out = {"transformer.wte.weight": sd["embed.weight"], "transformer.wpe.weight": sd["pos_embed.weight"],
           "transformer.ln_f.weight": sd["final_norm.weight"], "transformer.ln_f.bias": sd["final_norm.bias"]}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    reverse = {v: k for k, v in _GPT2_NAMES.items()}
    for i in range(cfg.n_layer):
        p, q = f"transformer.h.{i}.", f"blocks.{i}."
        for kind in ("weight", "bias"):
            out[p + f"attn.c_attn.{kind}"] = torch.cat([sd[q + f"attn.{n}.{kind}"] for n in "qkv"])
        _rename(sd, out, q, p, reverse)
    return _transpose_conv1d(out)


def gpt2_hf_config(cfg: DecoderConfig) -> dict:
    s = cfg.layers[0]
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": cfg.vocab_size,
            "n_embd": cfg.n_embd, "n_layer": cfg.n_layer, "n_head": s.n_head, "n_inner": s.mlp,
            "activation_function": _hf_activation(cfg.activation), "layer_norm_epsilon": cfg.norm_eps,
            "n_positions": cfg.max_positions, "tie_word_embeddings": cfg.tie_embeddings}


def gpt2_expressible(cfg: DecoderConfig) -> bool:
    s = cfg.layers[0]
    return (cfg.n_embd == s.n_head * cfg.head_size and s.n_kv == s.n_head and cfg.rotary_fraction == 0
            and cfg.norm == "layernorm" and cfg.mlp_kind == "plain" and not cfg.parallel_residual
            and cfg.qkv_bias and cfg.attn_out_bias and cfg.mlp_bias and cfg.norm_bias)


# ---------------------------------------------------------------- shared helpers and the table

def _rename(src: StateDict, dst: StateDict, src_prefix: str, dst_prefix: str, names: dict[str, str]) -> None:
    """Copy weight and bias of each module `src_prefix+a` to `dst_prefix+b`, where present."""
    for a, b in names.items():
        for kind in ("weight", "bias"):
            key = f"{src_prefix}{a}.{kind}"
            if key in src:
                dst[f"{dst_prefix}{b}.{kind}"] = src[key]


def _hf_activation(ours: str) -> str:
    return {"gelu": "gelu", "gelu_tanh": "gelu_new", "silu": "silu", "relu": "relu"}[ours]


@dataclass(frozen=True)
class Family:
    read_config: Callable[[dict], DecoderConfig]
    to_ours: Callable[[StateDict, DecoderConfig], StateDict]
    from_ours: Callable[[StateDict, DecoderConfig], StateDict]
    hf_config: Callable[[DecoderConfig], dict]
    expressible: Callable[[DecoderConfig], bool]  # can the stock HF architecture hold this (uniform) config?


_LLAMA = Family(llama_config, llama_to_ours, llama_from_ours, llama_hf_config, llama_expressible)
FAMILIES: dict[str, Family] = {
    "gpt_neox": Family(neox_config, neox_to_ours, neox_from_ours, neox_hf_config, neox_expressible),
    "llama": _LLAMA,
    "qwen2": _LLAMA,
    "gpt2": Family(gpt2_config, gpt2_to_ours, gpt2_from_ours, gpt2_hf_config, gpt2_expressible),
}


def family_of(model_type: str) -> Family:
    if model_type not in FAMILIES:
        raise UsageError(
            f"architecture {model_type!r} is not supported",
            f"use a GPT-NeoX/Pythia, Llama-family (llama, qwen2) or GPT-2 checkpoint (model_type one of "
            f"{sorted(FAMILIES)})",
        )
    return FAMILIES[model_type]


def exportable_as_hf(cfg: DecoderConfig) -> bool:
    """Whether `cfg` fits its family's stock transformers class; otherwise it is exported as headstart code."""
    return cfg.family in FAMILIES and cfg.is_uniform and FAMILIES[cfg.family].expressible(cfg)
