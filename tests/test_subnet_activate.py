"""Activating a sub-network on the teacher and extracting it give the same function, and the right one."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
import transformers
from subnet_helpers import logits, random_fine_spec, space_samples, tiny_teacher

from headstart.model import register_auto_classes
from headstart.subnet import SubnetSpec, activate, extract, extract_to_folder, full_spec
from headstart.subnet.extract import SPEC_FILE
from headstart.subnet.importance import Importance, permute_teacher
from headstart.subnet.spec import LayerSpec, load_spec

TOL = 1e-5
SAME = 1e-6  # activated vs extracted: the same weights; only GPT-2's transposed (strided) teacher weights
# take another matmul kernel than their contiguous copies, which moves the last bits (other families: exact)


def coarse_spec(teacher) -> SubnetSpec:
    cfg = teacher.config
    s = cfg.layers[0]
    kv = max(1, s.n_kv // 2)  # whole groups, so the kept heads are a prefix too
    return SubnetSpec.from_dict({"embd": cfg.n_embd // 2, "layers": cfg.n_layer - 1,
                                 "heads": kv * s.n_head // s.n_kv, "kv": kv, "mlp": s.mlp // 2}, cfg)


def layerwise_spec(teacher) -> SubnetSpec:
    cfg = teacher.config
    s = cfg.layers[0]
    q = s.n_head // s.n_kv
    return SubnetSpec.from_dict({"embd": cfg.n_embd - 4, "layers": [
        {"layer": 0, "heads": s.n_head, "kv": s.n_kv, "mlp": 5},
        {"layer": cfg.n_layer - 1, "heads": list(range(q, 2 * q)) if s.n_kv > 1 else [0], "mlp": [1, 3, s.mlp - 1]},
    ]}, cfg)


SPECS = {"coarse": coarse_spec, "layerwise": layerwise_spec,
         "fine": lambda t: random_fine_spec(t, seed=0), "fine-dropped-layers": lambda t: random_fine_spec(t, seed=3)}


def test_full_spec_activation_is_exactly_the_teacher(family, tokens, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    assert torch.equal(logits(activate(teacher, full_spec(teacher.config)), tokens), logits(teacher, tokens))


@pytest.mark.parametrize("kind", list(SPECS))
def test_activated_and_extracted_give_identical_logits(family, kind, tokens, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    spec = SPECS[kind](teacher)
    active, standalone = activate(teacher, spec), extract(teacher, spec)
    assert active.config == standalone.config
    assert (logits(active, tokens) - logits(standalone, tokens)).abs().max().item() <= SAME


def test_activated_and_extracted_agree_on_random_specs_of_every_space(family, tokens, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    for spec in space_samples(teacher, seed=1, per_space=1):
        diff = (logits(activate(teacher, spec), tokens) - logits(extract(teacher, spec), tokens)).abs().max()
        assert diff.item() <= SAME, spec


def test_dropped_layers_run_exactly_the_kept_teacher_layers(family, tokens, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    kept = [0, teacher.config.n_layer - 1]
    spec = SubnetSpec.from_dict({"layers": kept}, teacher.config)
    reference = copy.deepcopy(teacher)
    reference.blocks = torch.nn.ModuleList(teacher.blocks[i] for i in kept)
    assert torch.equal(logits(extract(teacher, spec), tokens), logits(reference, tokens))


def test_dropped_heads_and_neurons_equal_the_teacher_with_them_zeroed(family, tokens, tmp_path):
    """An independent reference: removing a head or neuron is zeroing what it writes to the residual.

    Not for heads where QK-norm spans the whole projection (OLMo-2): there a head's queries are
    normalised with the others', so removing it changes them; those keep every head here.
    """
    teacher = tiny_teacher(family, tmp_path)
    cfg = teacher.config
    full = random_fine_spec(teacher, seed=5)
    layers = _per_layer(full, cfg)
    if cfg.qk_norm == "projection":
        whole = full_spec(cfg).layers
        layers = [dataclasses.replace(s, heads=whole[s.layer].heads, kv=whole[s.layer].kv) for s in layers]
    spec = SubnetSpec(embd=tuple(range(cfg.n_embd)), layers=tuple(layers))
    reference = copy.deepcopy(teacher)
    with torch.no_grad():
        for s in spec.layers:
            block = reference.blocks[s.layer]
            dropped_heads = sorted(set(range(cfg.layers[s.layer].n_head)) - set(s.heads))
            for h in dropped_heads:
                block.attn.o.weight[:, h * cfg.head_size:(h + 1) * cfg.head_size] = 0
            block.mlp.down.weight[:, sorted(set(range(cfg.layers[s.layer].mlp)) - set(s.mlp))] = 0
    diff = (logits(activate(teacher, spec), tokens) - logits(reference, tokens)).abs().max().item()
    assert diff <= TOL


def _per_layer(spec: SubnetSpec, cfg) -> list[LayerSpec]:
    """Units for every teacher layer: the spec's where it keeps the layer, the whole layer elsewhere."""
    kept = {s.layer: s for s in spec.layers}
    whole = full_spec(cfg).layers
    return [kept.get(i, whole[i]) for i in range(cfg.n_layer)]


def test_embedding_channel_sets_equal_prefixes_of_a_permuted_teacher(family, tokens, tmp_path):
    """Named channels of the teacher compute what the same channels, moved to the front, compute as a prefix."""
    teacher = tiny_teacher(family, tmp_path)
    cfg = teacher.config
    gen = torch.Generator().manual_seed(0)
    scores = Importance("random", torch.rand(cfg.n_embd, generator=gen),
                        [torch.rand(s.n_head, generator=gen) for s in cfg.layers],
                        [torch.rand(s.mlp, generator=gen) for s in cfg.layers], torch.rand(cfg.n_layer, generator=gen))
    e = cfg.n_embd // 2
    chosen = torch.sort(scores.embd, descending=True).indices[:e].tolist()
    by_index = SubnetSpec.from_dict({"embd": chosen}, cfg)
    by_prefix = SubnetSpec.from_dict({"embd": e}, cfg)
    diff = logits(activate(teacher, by_index), tokens) - logits(activate(permute_teacher(teacher, scores), by_prefix),
                                                              tokens)
    assert diff.abs().max().item() <= TOL


def test_coarse_activation_shares_the_teachers_memory(family, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    storages = {p.untyped_storage().data_ptr() for p in teacher.parameters()}
    active = activate(teacher, coarse_spec(teacher))
    assert all(p.untyped_storage().data_ptr() in storages for p in active.parameters())
    assert not any(p.requires_grad for p in active.parameters())


def test_extracted_weights_are_independent_of_the_teacher(family, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    storages = {p.untyped_storage().data_ptr() for p in teacher.parameters()}
    model = extract(teacher, coarse_spec(teacher))
    assert not any(p.untyped_storage().data_ptr() in storages for p in model.parameters())
    assert all(p.requires_grad and p.is_contiguous() for p in model.parameters())


def test_teacher_is_bit_identical_after_activating_and_deactivating(family, tokens, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    expected = logits(teacher, tokens)
    for kind in SPECS:
        active = activate(teacher, SPECS[kind](teacher))
        logits(active, tokens)
        del active  # deactivating is dropping the view model
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert torch.equal(logits(teacher, tokens), expected)


@pytest.mark.parametrize("kind", ["coarse", "layerwise"])
def test_extracted_folder_loads_with_transformers_and_matches(family, kind, tokens, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    spec = SPECS[kind](teacher)
    out = extract_to_folder(teacher, spec, tmp_path / "student")
    register_auto_classes()
    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert (json.loads((out / "config.json").read_text())["model_type"] == family) == (kind == "coarse")
    with torch.no_grad():
        diff = (hf(tokens).logits - logits(activate(teacher, spec), tokens)).abs().max().item()
    assert diff <= 1e-4
    assert load_spec(out / SPEC_FILE, teacher.config) == spec
