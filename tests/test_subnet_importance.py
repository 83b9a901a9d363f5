"""Importance scores, and the re-ordered teacher that keeps its function while putting its best units first."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import VOCAB
from subnet_helpers import logits, tiny_teacher

from headstart.model import load_model, save_model
from headstart.subnet import SubnetSpec, activate
from headstart.subnet.importance import (
    Importance,
    activation_importance,
    importance_spec,
    magnitude_importance,
    permute_teacher,
    top_layers,
)

TOL = 1e-5


@pytest.fixture
def windows() -> torch.Tensor:
    return torch.randint(0, VOCAB, (6, 13), generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("method", ["activation", "magnitude"])
def test_permuted_teacher_computes_the_same_function(family, method, windows, tokens, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    scores = activation_importance(teacher, windows) if method == "activation" else magnitude_importance(teacher)
    permuted = permute_teacher(teacher, scores)
    assert not torch.equal(permuted.embed.weight, teacher.embed.weight)  # it really moved things
    assert (logits(permuted, tokens) - logits(teacher, tokens)).abs().max().item() <= TOL


def test_permuted_teacher_saved_as_a_folder_keeps_its_logits(family, windows, tokens, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    save_model(permute_teacher(teacher, activation_importance(teacher, windows)), tmp_path / "sorted")
    again = load_model(tmp_path / "sorted")
    assert again.config == teacher.config
    assert (logits(again, tokens) - logits(teacher, tokens)).abs().max().item() <= TOL


def test_prefix_of_the_permuted_teacher_is_the_importance_spec(family, windows, tokens, tmp_path):
    """Coarse slicing of the re-ordered teacher keeps exactly the most important units."""
    teacher = tiny_teacher(family, tmp_path)
    cfg = teacher.config
    scores = activation_importance(teacher, windows)
    s = cfg.layers[0]
    q = s.n_head // s.n_kv
    kv = max(1, s.n_kv // 2)
    coarse = SubnetSpec.from_dict({"embd": cfg.n_embd // 2, "layers": cfg.n_layer - 1, "kv": kv,
                                   "heads": kv * max(1, q - 1), "mlp": s.mlp // 3}, cfg)
    fine = importance_spec(cfg, scores, coarse)
    assert fine != coarse
    diff = logits(activate(permute_teacher(teacher, scores), coarse), tokens) - logits(activate(teacher, fine), tokens)
    assert diff.abs().max().item() <= TOL


def test_scores_have_one_finite_value_per_unit(family, windows, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    cfg = teacher.config
    for scores in (activation_importance(teacher, windows, batch_size=4), magnitude_importance(teacher)):
        assert scores.embd.shape == (cfg.n_embd,) and scores.layers.shape == (cfg.n_layer,)
        assert [h.shape[0] for h in scores.heads] == [s.n_head for s in cfg.layers]
        assert [m.shape[0] for m in scores.mlp] == [s.mlp for s in cfg.layers]
        assert all(torch.isfinite(t).all() and (t >= 0).all() for t in [scores.embd, scores.layers, *scores.heads])
        assert scores.groups(cfg, 0).shape == (cfg.layers[0].n_kv,)


def test_activation_scores_do_not_depend_on_the_batch_size(windows, tmp_path):
    teacher = tiny_teacher("llama", tmp_path)
    a, b = activation_importance(teacher, windows, batch_size=1), activation_importance(teacher, windows, batch_size=6)
    assert torch.allclose(a.embd, b.embd, rtol=1e-5) and torch.allclose(a.layers, b.layers, rtol=1e-5)
    assert all(torch.allclose(x, y, rtol=1e-5) for x, y in zip(a.mlp, b.mlp, strict=True))


def test_layer_importance_is_one_minus_cosine_of_block_input_and_output(windows, tmp_path):
    teacher = tiny_teacher("gpt_neox", tmp_path)
    scores = activation_importance(teacher, windows)
    x = teacher.embed(windows[:, :-1])
    cos, sin = teacher.rope(x.shape[1], x.device, x.dtype)
    with torch.no_grad():
        y = teacher.blocks[0](x, cos, sin)
        expected = (1 - F.cosine_similarity(x, y, dim=-1)).mean()
    assert scores.layers[0].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("method", ["activation", "magnitude"])
def test_dead_units_score_lowest(method, windows, tmp_path):
    """A head that writes nothing, a neuron that never fires, a channel every norm zeroes: each scores zero."""
    teacher = tiny_teacher("gpt_neox", tmp_path)  # multi-head, so one head's values are its own
    hs = teacher.config.head_size
    with torch.no_grad():
        block = teacher.blocks[1]
        for lin in (block.attn.q, block.attn.k, block.attn.v):
            lin.weight[2 * hs:3 * hs] = 0
            lin.bias[2 * hs:3 * hs] = 0
        block.attn.o.weight[:, 2 * hs:3 * hs] = 0
        block.mlp.up.weight[5] = 0
        block.mlp.up.bias[5] = 0
        block.mlp.down.weight[:, 5] = 0
        for norm in [teacher.final_norm, *(m for b in teacher.blocks for m in (b.attn_norm, b.mlp_norm))]:
            norm.weight[7] = 0
            norm.bias[7] = 0
        if method == "magnitude":  # weights alone cannot see the norms: zero the channel's weights too
            for w in (teacher.embed.weight, teacher.lm_head.weight):
                w[:, 7] = 0
            for b in teacher.blocks:
                for lin in (b.attn.q, b.attn.k, b.attn.v, b.mlp.up):
                    lin.weight[:, 7] = 0
                b.attn.o.weight[7] = 0
                b.mlp.down.weight[7] = 0
    scores = activation_importance(teacher, windows) if method == "activation" else magnitude_importance(teacher)
    assert scores.heads[1][2].item() == 0 and (scores.heads[1] > 0).sum() == teacher.config.layers[1].n_head - 1
    assert scores.mlp[1][5].item() == 0 and (scores.mlp[1] > 0).sum() == teacher.config.layers[1].mlp - 1
    assert scores.embd[7].item() == 0 and (scores.embd > 0).sum() == teacher.config.n_embd - 1


def test_top_layers_are_the_highest_scoring_in_teacher_order():
    scores = Importance("x", torch.zeros(2), [], [], torch.tensor([0.5, 0.1, 0.9, 0.3]))
    assert top_layers(scores, 2) == (0, 2)


def test_scores_round_trip_through_json(windows, tmp_path):
    teacher = tiny_teacher("qwen2", tmp_path)
    scores = activation_importance(teacher, windows)
    again = Importance.from_dict(json.loads(json.dumps(scores.to_dict(teacher.config))))
    assert torch.equal(again.embd, scores.embd) and torch.equal(again.layers, scores.layers)
    assert all(torch.equal(a, b) for a, b in zip(again.mlp, scores.mlp, strict=True))
