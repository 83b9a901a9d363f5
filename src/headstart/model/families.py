"""Hugging Face <-> headstart, one entry per family in `FAMILIES`: its config fields, flags and weight map.

Adding a family means adding one `Family` here (for the Llama lineage, one `LlamaLike(...)` entry:
its module names, its flags and where its biases come from); the decoder, activation, counting and
the tests follow from the decoder's flags. Weight maps are strict both ways: loading fails naming
any checkpoint tensor the map does not use (see checkpoint.load_model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import torch

from headstart.errors import UsageError
from headstart.model.decoder import ROPE_TYPES, DecoderConfig, LayerShape, dim_sizes, parameter_dims

StateDict = Mapping[str, torch.Tensor]
_GEMMA = "embedding scaling by sqrt(hidden), (1 + weight) RMSNorm"
_REFUSED = {  # architectures users reach for whose behaviour the decoder lacks, and what it lacks
    "gemma": _GEMMA,
    "gemma2": f"sliding-window attention, attention and final-logit soft-capping, norms both before and after "
              f"each sub-layer, {_GEMMA}",
    "gemma3_text": f"sliding-window attention with its own RoPE base, norms both before and after each sub-layer, "
                   f"{_GEMMA}",
    "gemma3": f"sliding-window attention with its own RoPE base, norms both before and after each sub-layer, "
              f"{_GEMMA} (and a vision tower)",
    "olmo": "non-parametric LayerNorm",
    "phi": "a parallel block with one shared LayerNorm",
}


def _rope(raw: dict, default_fraction: float) -> tuple[float, float, dict | None]:
    """(theta, rotary fraction, scaling parameters or None) from the v4 (flat) or v5 (`rope_parameters`) layout."""
    params = {**(raw.get("rope_scaling") or {}), **(raw.get("rope_parameters") or {})}
    if "type" in params:
        params.setdefault("rope_type", params.pop("type"))
    kind = params.setdefault("rope_type", "default")
    if kind not in ROPE_TYPES:
        raise UsageError(f"RoPE scaling {kind!r} is not supported",
                         f"use a checkpoint whose rope_type is one of {list(ROPE_TYPES)}")
    theta = params.pop("rope_theta", raw.get("rope_theta", raw.get("rotary_emb_base", 10000.0)))
    fraction = params.pop("partial_rotary_factor", raw.get("rotary_pct", raw.get("partial_rotary_factor")))
    if kind in ("llama3", "yarn", "longrope") and "original_max_position_embeddings" in raw:
        params["original_max_position_embeddings"] = raw["original_max_position_embeddings"]  # as transformers
    return float(theta), float(default_fraction if fraction is None else fraction), (
        None if kind == "default" else params)


def _hf_rope(cfg: DecoderConfig) -> dict:
    """The `rope_parameters` of a transformers 5 config, plus the flat `rope_theta` that version 4 reads.

    A pretraining length is repeated at the top, where Phi-3's config class keeps it (and would else
    put its own default in its place).
    """
    scaling = cfg.rope_scaling or {}
    d = {"rope_theta": cfg.rope_theta, "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta}
         | scaling}
    if "original_max_position_embeddings" in scaling:
        d["original_max_position_embeddings"] = scaling["original_max_position_embeddings"]
    return d


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
    theta, fraction, scaling = _rope(raw, 0.25)
    if fraction == 0:
        raise UsageError("a GPT-NeoX config with rotary_pct 0 has no positions at all", "use rotary_pct > 0")
    bias = raw.get("attention_bias", True)
    return DecoderConfig(
        family="gpt_neox", vocab_size=raw["vocab_size"], n_embd=e, head_size=e // h,
        layers=_uniform_layers(raw["num_hidden_layers"], h, h, raw.get("intermediate_size") or 4 * e),
        norm="layernorm", norm_eps=raw.get("layer_norm_eps", 1e-5), mlp_kind="plain",
        activation=_activation(raw.get("hidden_act", "gelu")),
        parallel_residual=raw.get("use_parallel_residual", True), qkv_bias=bias, attn_out_bias=bias,
        mlp_bias=True, rotary_fraction=fraction, rope_theta=theta, rope_scaling=scaling,
        max_positions=raw.get("max_position_embeddings", 2048), tie_embeddings=raw.get("tie_word_embeddings", False),
    )


# a family's names for ours outside the blocks (and GPT-NeoX's inside them, besides the fused query/key/value
# projection): one table for both directions
_NEOX_MODEL = {"gpt_neox.embed_in.weight": "embed.weight", "gpt_neox.final_layer_norm.weight": "final_norm.weight",
               "gpt_neox.final_layer_norm.bias": "final_norm.bias", "embed_out.weight": "lm_head.weight"}
_LLAMA_MODEL = {"model.embed_tokens.weight": "embed.weight", "model.norm.weight": "final_norm.weight",
                "lm_head.weight": "lm_head.weight"}
_NEOX_BLOCK = {"input_layernorm": "attn_norm", "post_attention_layernorm": "mlp_norm", "attention.dense": "attn.o",
               "mlp.dense_h_to_4h": "mlp.up", "mlp.dense_4h_to_h": "mlp.down"}


def _model_tensors(sd: StateDict, cfg: DecoderConfig, names: dict[str, str]) -> dict[str, torch.Tensor]:
    """The tensors outside the blocks, renamed by `names` (a tied head has no tensor of its own)."""
    return {dst: sd[src] for src, dst in names.items() if not (cfg.tie_embeddings and "lm_head.weight" in (src, dst))}


def neox_to_ours(sd: StateDict, cfg: DecoderConfig) -> dict[str, torch.Tensor]:
    out = _model_tensors(sd, cfg, _NEOX_MODEL)
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
        _rename(sd, out, p, q, _NEOX_BLOCK)
    return out


def neox_from_ours(sd: StateDict, cfg: DecoderConfig) -> dict[str, torch.Tensor]:
    out = _model_tensors(sd, cfg, {ours: theirs for theirs, ours in _NEOX_MODEL.items()})
    for i, s in enumerate(cfg.layers):
        p, q = f"gpt_neox.layers.{i}.", f"blocks.{i}."
        parts = [sd[q + f"attn.{n}.weight"].view(s.n_head, 1, cfg.head_size, cfg.n_embd) for n in "qkv"]
        out[p + "attention.query_key_value.weight"] = torch.cat(parts, 1).reshape(-1, cfg.n_embd)
        if cfg.qkv_bias:
            parts = [sd[q + f"attn.{n}.bias"].view(s.n_head, 1, cfg.head_size) for n in "qkv"]
            out[p + "attention.query_key_value.bias"] = torch.cat(parts, 1).reshape(-1)
        _rename(sd, out, q, p, {ours: theirs for theirs, ours in _NEOX_BLOCK.items()})
    return out


def neox_hf_config(cfg: DecoderConfig) -> dict:
    s = cfg.layers[0]
    return {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.n_embd, "num_hidden_layers": cfg.n_layer, "num_attention_heads": s.n_head,
            "intermediate_size": s.mlp, "hidden_act": _hf_activation(cfg.activation),
            "layer_norm_eps": cfg.norm_eps, "use_parallel_residual": cfg.parallel_residual,
            "rotary_pct": cfg.rotary_fraction, "rotary_emb_base": cfg.rope_theta,
            "attention_bias": cfg.qkv_bias, "max_position_embeddings": cfg.max_positions,
            "tie_word_embeddings": cfg.tie_embeddings} | _hf_rope(cfg)


# ---------------------------------------------------------------- the Llama lineage

_LLAMA_NAMES = {"input_layernorm": "attn_norm", "post_attention_layernorm": "mlp_norm",
                "self_attn.q_proj": "attn.q", "self_attn.k_proj": "attn.k", "self_attn.v_proj": "attn.v",
                "self_attn.o_proj": "attn.o", "mlp.gate_proj": "mlp.gate", "mlp.up_proj": "mlp.up",
                "mlp.down_proj": "mlp.down"}
_QK_NORM_NAMES = {"self_attn.q_norm": "attn.q_norm", "self_attn.k_norm": "attn.k_norm"}
_BIAS_FLAGS = ("qkv_bias", "attn_out_bias", "mlp_bias")


@dataclass(frozen=True)
class LlamaLike:
    """A Llama-lineage architecture: RMSNorm, gated MLP, RoPE, GQA, and what sets it apart from Llama.

    `biases` says where each bias flag comes from: the name of a config.json key, or True where the
    architecture always has it (Qwen2's q/k/v); flags not named are False. `fused` names the fused
    modules that hold several of ours, in order (Phi-3's qkv_proj and gate_up_proj).
    """

    architecture: str
    biases: dict[str, str | bool] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=lambda: _LLAMA_NAMES)
    fused: dict[str, tuple[str, ...]] = field(default_factory=dict)
    qk_norm: str = "none"
    norm_position: str = "pre"
    partial_rotary: bool = False  # whether the architecture reads partial_rotary_factor (Llama ignores it)

    def read_config(self, raw: dict) -> DecoderConfig:
        e, h = raw["hidden_size"], raw["num_attention_heads"]
        _refuse_sliding_window(raw)
        theta, fraction, scaling = _rope(raw, 1.0)
        return DecoderConfig(
            family=raw["model_type"], vocab_size=raw["vocab_size"], n_embd=e, head_size=raw.get("head_dim") or e // h,
            layers=_uniform_layers(raw["num_hidden_layers"], h, raw.get("num_key_value_heads") or h,
                                   raw["intermediate_size"]),
            norm="rmsnorm", norm_eps=raw.get("rms_norm_eps", 1e-6), mlp_kind="gated",
            activation=_activation(raw.get("hidden_act", "silu")), parallel_residual=False,
            **{flag: bool(raw.get(src, False)) if isinstance(src, str) else src
               for flag, src in self.biases.items()},
            norm_bias=False, rotary_fraction=fraction if self.partial_rotary else 1.0, rope_theta=theta,
            rope_scaling=scaling, max_positions=raw.get("max_position_embeddings", 2048),
            tie_embeddings=raw.get("tie_word_embeddings", False), qk_norm=self.qk_norm,
            norm_position=self.norm_position)

    def hf_config(self, cfg: DecoderConfig) -> dict:
        s = cfg.layers[0]
        d = {"architectures": [self.architecture], "model_type": cfg.family, "vocab_size": cfg.vocab_size,
             "hidden_size": cfg.n_embd, "num_hidden_layers": cfg.n_layer, "num_attention_heads": s.n_head,
             "num_key_value_heads": s.n_kv, "head_dim": cfg.head_size, "intermediate_size": s.mlp,
             "hidden_act": _hf_activation(cfg.activation), "rms_norm_eps": cfg.norm_eps,
             "max_position_embeddings": cfg.max_positions, "tie_word_embeddings": cfg.tie_embeddings} | _hf_rope(cfg)
        if self.partial_rotary:
            d["rope_parameters"]["partial_rotary_factor"] = cfg.rotary_fraction
        for flag in _BIAS_FLAGS:  # two flags may share a key: then the config only holds them when they agree
            src = self.biases.get(flag)
            if isinstance(src, str):
                d[src] = d.get(src, getattr(cfg, flag)) and getattr(cfg, flag)
        return d

    def to_ours(self, sd: StateDict, cfg: DecoderConfig) -> dict[str, torch.Tensor]:
        out = _model_tensors(sd, cfg, _LLAMA_MODEL)
        names = self.names | (_QK_NORM_NAMES if cfg.qk_norm != "none" else {})
        for i, shape in enumerate(cfg.layers):
            p, q = f"model.layers.{i}.", f"blocks.{i}."
            _rename(sd, out, p, q, names)
            for theirs, ours in self.fused.items():
                sizes = [_rows(cfg, shape, f"{m}.weight") for m in ours]
                for m, part in zip(ours, sd[f"{p}{theirs}.weight"].split(sizes), strict=True):
                    out[f"{q}{m}.weight"] = part
        return out

    def from_ours(self, sd: StateDict, cfg: DecoderConfig) -> dict[str, torch.Tensor]:
        out = _model_tensors(sd, cfg, {ours: theirs for theirs, ours in _LLAMA_MODEL.items()})
        names = self.names | (_QK_NORM_NAMES if cfg.qk_norm != "none" else {})
        reverse = {v: k for k, v in names.items()}
        for i in range(cfg.n_layer):
            p, q = f"model.layers.{i}.", f"blocks.{i}."
            _rename(sd, out, q, p, reverse)
            for theirs, ours in self.fused.items():
                out[f"{p}{theirs}.weight"] = torch.cat([sd[f"{q}{m}.weight"] for m in ours])
        return out


def _rows(cfg: DecoderConfig, shape: LayerShape, name: str) -> int:
    """Rows of our block weight `name` in a layer of `shape`: where a fused weight splits."""
    return dim_sizes(cfg, shape)[parameter_dims(cfg)[1][name][0]]


def _refuse_sliding_window(raw: dict) -> None:
    """Refuse a window shorter than the context, where any layer uses it (Qwen's layer_types may say none)."""
    positions = raw.get("max_position_embeddings", 2048)
    window = raw.get("sliding_window") if raw.get("use_sliding_window", True) else None
    if "sliding_attention" not in raw.get("layer_types", ["sliding_attention"]):
        window = None
    if window is not None and window < positions:
        raise UsageError(f"sliding-window attention (window {window} < {positions} positions) is not supported",
                         "use a checkpoint without a sliding window")


_PHI3_NAMES = {k: v for k, v in _LLAMA_NAMES.items() if k in ("input_layernorm", "post_attention_layernorm",
                                                               "self_attn.o_proj", "mlp.down_proj")}
_OLMO2_NAMES = {k: v for k, v in _LLAMA_NAMES.items() if "layernorm" not in k} | {
    "post_attention_layernorm": "attn_norm", "post_feedforward_layernorm": "mlp_norm"}
_ATTENTION_BIAS = {"qkv_bias": "attention_bias", "attn_out_bias": "attention_bias"}


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


def _is_conv1d(name: str) -> bool:
    return name.endswith(".weight") and any(c in name for c in _GPT2_CONV1D)


def _transpose_conv1d(sd: StateDict) -> dict[str, torch.Tensor]:
    """Conv1D [in, out] <-> Linear [out, in], as contiguous tensors (a transpose is its own inverse)."""
    return {k: (v.t().contiguous() if _is_conv1d(k) else v) for k, v in sd.items()}


class _Gpt2Checkpoint(Mapping[str, torch.Tensor]):
    """A GPT-2 checkpoint as Linear weights, read only when asked for: names without the "transformer."
    prefix, Conv1D weights transposed."""

    def __init__(self, sd: StateDict) -> None:
        self._sd = sd

    def _key(self, name: str) -> str:
        return f"transformer.{name}" if f"transformer.{name}" in self._sd else name

    def __getitem__(self, name: str) -> torch.Tensor:
        tensor = self._sd[self._key(name)]
        return tensor.t().contiguous() if _is_conv1d(name) else tensor

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._sd

    def __iter__(self) -> Iterator[str]:
        return (k.removeprefix("transformer.") for k in self._sd)

    def __len__(self) -> int:
        return len(self._sd)


def gpt2_to_ours(sd: StateDict, cfg: DecoderConfig) -> dict[str, torch.Tensor]:
    sd = _Gpt2Checkpoint(sd)
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


def gpt2_from_ours(sd: StateDict, cfg: DecoderConfig) -> dict[str, torch.Tensor]:
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



# ---------------------------------------------------------------- shared helpers and the table

def _rename(src: StateDict, dst: dict[str, torch.Tensor], src_prefix: str, dst_prefix: str,
            names: dict[str, str]) -> None:
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
    to_ours: Callable[[StateDict, DecoderConfig], dict[str, torch.Tensor]]
    from_ours: Callable[[StateDict, DecoderConfig], dict[str, torch.Tensor]]
    hf_config: Callable[[DecoderConfig], dict]
    buffers: tuple[str, ...] = ()  # checkpoint tensors that are no weights (suffixes): read by no map


def _llama_like(arch: LlamaLike) -> Family:
    return Family(arch.read_config, arch.to_ours, arch.from_ours, arch.hf_config,
                  buffers=(".rotary_emb.inv_freq", "lm_head.weight"))  # a tied head saved anyway: unused, as in HF


FAMILIES: dict[str, Family] = {
    "gpt_neox": Family(neox_config, neox_to_ours, neox_from_ours, neox_hf_config, buffers=(
        ".attention.bias", ".attention.masked_bias", ".rotary_emb.inv_freq", "embed_out.weight")),
    "gpt2": Family(gpt2_config, gpt2_to_ours, gpt2_from_ours, gpt2_hf_config,
                   buffers=(".attn.bias", ".attn.masked_bias", "lm_head.weight")),
    "llama": _llama_like(LlamaLike("LlamaForCausalLM", biases=_ATTENTION_BIAS | {"mlp_bias": "mlp_bias"})),
    "mistral": _llama_like(LlamaLike("MistralForCausalLM")),
    "qwen2": _llama_like(LlamaLike("Qwen2ForCausalLM", biases={"qkv_bias": True})),
    "qwen3": _llama_like(LlamaLike("Qwen3ForCausalLM", biases=_ATTENTION_BIAS, qk_norm="head")),
    "phi3": _llama_like(LlamaLike("Phi3ForCausalLM", names=_PHI3_NAMES, partial_rotary=True, fused={
        "self_attn.qkv_proj": ("attn.q", "attn.k", "attn.v"), "mlp.gate_up_proj": ("mlp.gate", "mlp.up")})),
    "olmo2": _llama_like(LlamaLike("Olmo2ForCausalLM", biases=_ATTENTION_BIAS, names=_OLMO2_NAMES,
                                   qk_norm="projection", norm_position="post")),
}


def family_of(model_type: str) -> Family:
    if model_type in _REFUSED:
        raise UsageError(f"architecture {model_type!r} needs {_REFUSED[model_type]}, which headstart's decoder "
                         "does not have", f"use a checkpoint of a supported family ({', '.join(FAMILIES)})")
    if model_type not in FAMILIES:
        raise UsageError(f"architecture {model_type!r} is not supported",
                         f"use a checkpoint whose model_type is one of {', '.join(FAMILIES)}")
    return FAMILIES[model_type]


def exportable_as_hf(cfg: DecoderConfig) -> bool:
    """Whether `cfg` fits its family's stock transformers class (else it is exported as headstart code).

    It fits when its stock config reads back as the same `DecoderConfig`: what that config cannot say
    (a width that is not heads x head size, a bias the class lacks) does not survive the trip.
    """
    if cfg.family not in FAMILIES or not cfg.is_uniform:
        return False
    family = FAMILIES[cfg.family]
    try:
        return family.read_config(family.hf_config(cfg)) == cfg
    except UsageError:
        return False
