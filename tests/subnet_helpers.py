"""Shared pieces of the sub-network tests: tiny teachers loaded into headstart, and spec makers."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from conftest import save_tiny

from headstart.model import load_model
from headstart.model.decoder import Decoder
from headstart.subnet.spaces import make_space
from headstart.subnet.spec import LayerSpec, SubnetSpec


def tiny_teacher(family: str, tmp_path: Path) -> Decoder:
    save_tiny(family, tmp_path / f"teacher-{family}")
    return load_model(tmp_path / f"teacher-{family}")


def random_fine_spec(teacher: Decoder, seed: int) -> SubnetSpec:
    """A fine-grained, layer-wise spec with dropped layers, drawn independently of the spaces."""
    rng = random.Random(seed)
    cfg = teacher.config

    def subset(n: int, k: int) -> tuple[int, ...]:
        return tuple(sorted(rng.sample(range(n), k)))

    kept = subset(cfg.n_layer, rng.randint(1, cfg.n_layer))
    layers = []
    for i in kept:
        s = cfg.layers[i]
        q = s.n_head // s.n_kv
        kv = subset(s.n_kv, rng.randint(1, s.n_kv))
        m = rng.randint(1, q)
        heads = tuple(sorted(g * q + p for g in kv for p in subset(q, m)))
        layers.append(LayerSpec(i, heads, kv, subset(s.mlp, rng.randint(1, s.mlp))))
    return SubnetSpec(embd=subset(cfg.n_embd, rng.randint(1, cfg.n_embd)), layers=tuple(layers))


def space_samples(teacher: Decoder, seed: int, per_space: int = 2) -> list[SubnetSpec]:
    """Random specs of every space, layer selection and width multiple."""
    rng = random.Random(seed)
    out = []
    for name in ("coarse-uniform", "coarse-layerwise", "fine-uniform", "fine-layerwise", "layers"):
        for layers in ("first", "subset"):
            space = make_space(name, teacher.config, layers=layers, multiple=rng.choice([1, 4, 8]))
            out += [space.sample(rng) for _ in range(per_space)]
    return out


def logits(model: Decoder, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens)
