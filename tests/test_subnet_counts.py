"""Exact parameter counts and FLOPs from a config alone, checked against built models."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from subnet_helpers import random_fine_spec, space_samples, tiny_teacher
from torch.utils.flop_counter import FlopCounterMode

from headstart.model import DecoderConfig, LayerShape
from headstart.model.decoder import Decoder, dim_sizes, parameter_dims
from headstart.subnet import extract, flops_per_token, measure_latency, memory_footprint, param_count, spec_latency
from headstart.subnet.spec import full_spec


def numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_param_count_equals_numel_of_extracted_models(family, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    assert param_count(teacher.config) == numel(teacher)
    specs = space_samples(teacher, seed=2) + [random_fine_spec(teacher, seed) for seed in range(5)]
    for spec in specs:
        assert param_count(teacher.config, spec) == numel(extract(teacher, spec)), spec


@pytest.mark.parametrize("seed", range(20))
def test_parameter_dims_are_the_parameters_of_random_configs(seed):
    """Every flag that adds parameters (biases, norm kinds, gated MLPs, GQA, tying, learned positions,
    QK-norms): the declared table is exactly the built model's parameters, so counts and slicing are too."""
    rng = random.Random(seed)
    kv = rng.choice([1, 2])
    cfg = DecoderConfig(
        family=rng.choice(["gpt_neox", "llama", "gpt2"]), vocab_size=rng.randint(5, 40), n_embd=rng.randint(4, 24),
        head_size=rng.choice([2, 4]),
        layers=[LayerShape(kv * rng.randint(1, 3), kv, rng.randint(1, 30)) for _ in range(rng.randint(1, 3))],
        norm=rng.choice(["layernorm", "rmsnorm"]), mlp_kind=rng.choice(["plain", "gated"]),
        qkv_bias=rng.random() < 0.5, attn_out_bias=rng.random() < 0.5, mlp_bias=rng.random() < 0.5,
        norm_bias=rng.random() < 0.5, rotary_fraction=rng.choice([0.0, 0.5, 1.0]), max_positions=rng.randint(8, 20),
        tie_embeddings=rng.random() < 0.5, qk_norm=rng.choice(["none", "head", "projection"]),
        norm_position=rng.choice(["pre", "post"]))
    with torch.device("meta"):
        model = Decoder(cfg)
    model_dims, block_dims = parameter_dims(cfg)
    declared = {name: tuple(dim_sizes(cfg)[d] for d in dims) for name, dims in model_dims.items()}
    for i, shape in enumerate(cfg.layers):
        declared |= {f"blocks.{i}.{name}": tuple(dim_sizes(cfg, shape)[d] for d in dims)
                     for name, dims in block_dims.items()}
    assert declared == {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert param_count(cfg) == numel(model)


def counted_matmul_flops(model: Decoder, seq_len: int) -> int:
    """torch's FLOP counter sees every weight matmul; it does not count the CPU attention kernel."""
    idx = torch.zeros(1, seq_len, dtype=torch.long)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(idx)
    return counter.get_total_flops()


def causal_attention_flops(cfg: DecoderConfig, seq_len: int) -> int:
    """Scores q.k and the weighted sum of v: 2 FLOPs per channel each, token t attending to t positions."""
    positions = sum(range(1, seq_len + 1))
    return sum(2 * 2 * s.n_head * cfg.head_size * positions for s in cfg.layers)


def test_flops_per_token_are_torch_counted_matmuls_plus_causal_attention(family, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    seq_len = 7
    for spec in [full_spec(teacher.config), random_fine_spec(teacher, seed=1)]:
        student = extract(teacher, spec)
        expected = counted_matmul_flops(student, seq_len) + causal_attention_flops(student.config, seq_len)
        assert flops_per_token(teacher.config, spec, seq_len=seq_len) * seq_len == expected


def test_memory_footprint_follows_params_dtype_and_kv_groups(tmp_path):
    teacher = tiny_teacher("llama", tmp_path)
    cfg = teacher.config
    fp = memory_footprint(cfg, dtype=torch.bfloat16)
    assert fp.params == numel(teacher) and fp.weight_bytes == 2 * fp.params
    assert fp.kv_cache_bytes_per_token == cfg.n_layer * 2 * cfg.layers[0].n_kv * cfg.head_size * 2
    assert fp.training_bytes == fp.params * (2 + 2 + 8)
    smaller = dataclasses.replace(cfg, layers=[LayerShape(3, 1, 8)] * cfg.n_layer)
    assert memory_footprint(smaller, dtype=torch.bfloat16).kv_cache_bytes_per_token == fp.kv_cache_bytes_per_token // 2


def test_latency_is_measured_on_the_extracted_model(tmp_path):
    teacher = tiny_teacher("llama", tmp_path)
    lat = spec_latency(teacher, random_fine_spec(teacher, seed=0), seq_len=8, repeats=2)
    assert lat.seconds > 0 and lat.tokens_per_s == pytest.approx(8 / lat.seconds)
    assert measure_latency(teacher, seq_len=8, batch_size=2, repeats=1).batch_size == 2
