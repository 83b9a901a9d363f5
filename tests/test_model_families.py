"""headstart's decoder gives the same logits as transformers' own implementation, for every family."""

from __future__ import annotations

import json
import re

import pytest
import torch
import transformers
from conftest import save_tiny, tiny_hf_config, tiny_hf_model

from headstart.errors import UsageError
from headstart.model import DecoderConfig, LayerShape, load_model, register_auto_classes, save_model
from headstart.model.checkpoint import read_weights
from headstart.model.decoder import Decoder, init_weights

TOL = 1e-4


def hf_logits(model: transformers.PreTrainedModel, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens).logits


def test_import_matches_transformers(family, tokens, tmp_path):
    reference = save_tiny(family, tmp_path / "hf")
    ours = load_model(tmp_path / "hf")
    with torch.no_grad():
        diff = (ours(tokens) - hf_logits(reference, tokens)).abs().max().item()
    assert diff <= TOL, f"{family}: max |Δlogits| = {diff}"


def test_export_round_trip_is_the_stock_class(family, tokens, tmp_path):
    reference = save_tiny(family, tmp_path / "hf")
    save_model(load_model(tmp_path / "hf"), tmp_path / "out")
    assert json.loads((tmp_path / "out/config.json").read_text())["model_type"] == family
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert type(again) is type(reference)
    diff = (hf_logits(again, tokens) - hf_logits(reference, tokens)).abs().max().item()
    assert diff <= TOL


def heterogeneous(family: str, tmp_path) -> Decoder:
    """A layer-wise student: the teacher's config with different widths per layer and a narrower embedding."""
    save_tiny(family, tmp_path / "hf")
    cfg = load_model(tmp_path / "hf").config
    d = cfg.to_dict()
    kv = cfg.layers[0].n_kv
    d["layers"] = [LayerShape(n_head=kv, n_kv=kv, mlp=8), LayerShape(n_head=2 * kv, n_kv=kv, mlp=24)]
    d["n_embd"] = cfg.n_embd - 8
    model = Decoder(DecoderConfig.from_dict(d))
    init_weights(model, seed=3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def test_layerwise_student_loads_with_auto_class(family, tokens, tmp_path):
    model = heterogeneous(family, tmp_path)
    save_model(model, tmp_path / "student")
    assert json.loads((tmp_path / "student/config.json").read_text())["model_type"] == "headstart"
    # without headstart's registration: the folder's own code, as a user without headstart would load it
    remote = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "student", trust_remote_code=True)
    with torch.no_grad():
        expected = model(tokens)
    assert (hf_logits(remote, tokens) - expected).abs().max().item() <= TOL
    register_auto_classes()
    local = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "student")
    assert (hf_logits(local, tokens) - expected).abs().max().item() <= TOL
    back = load_model(tmp_path / "student")
    with torch.no_grad():
        assert torch.equal(back(tokens), expected)


def test_export_in_bf16_halves_the_file(tmp_path):
    save_tiny("gpt_neox", tmp_path / "hf")
    model = load_model(tmp_path / "hf")
    save_model(model, tmp_path / "bf16", dtype=torch.bfloat16)
    again = load_model(tmp_path / "bf16")
    assert again.embed.weight.dtype == torch.float32  # loads back in fp32 by default
    assert (again.embed.weight - model.embed.weight).abs().max() < 1e-2
    assert json.loads((tmp_path / "bf16/config.json").read_text())["dtype"] == "bfloat16"


def test_tied_embeddings_are_one_tensor(tmp_path):
    save_tiny("llama", tmp_path / "hf")
    model = load_model(tmp_path / "hf")
    assert model.lm_head is None and model.head_weight is model.embed.weight


@pytest.mark.parametrize("case", ["missing", "not_a_model", "unsupported", "corrupt", "bad_json", "missing_weight"])
def test_bad_model_folders_raise_usage_errors(case, tmp_path):
    path = tmp_path / "m"
    if case != "missing":
        save_tiny("gpt2", path)
    if case == "not_a_model":
        (path / "config.json").unlink()
    elif case == "unsupported":
        raw = json.loads((path / "config.json").read_text()) | {"model_type": "mamba"}
        (path / "config.json").write_text(json.dumps(raw))
    elif case == "corrupt":
        data = (path / "model.safetensors").read_bytes()
        (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif case == "bad_json":
        (path / "config.json").write_text("{not json")
    elif case == "missing_weight":
        raw = json.loads((path / "config.json").read_text()) | {"n_layer": 4}
        (path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(UsageError) as err:
        load_model(path)
    assert "\n" not in str(err.value)


def test_tokenizer_of_a_layerwise_student_loads_without_a_remote_code_prompt(tmp_path, capfd):
    """A BPE from `headstart prepare --train-tokenizer` names no tokenizer class, so transformers reads config.json."""
    from headstart.data import load_tokenizer, train_bpe

    model = heterogeneous("llama", tmp_path)
    train_bpe(["the cat sat on the mat"] * 20, 300, tmp_path / "tok")
    save_model(model, tmp_path / "student", tokenizer_dir=tmp_path / "tok")
    assert load_tokenizer(tmp_path / "student")("the cat")["input_ids"]
    captured = capfd.readouterr()
    assert "custom code" not in captured.out + captured.err


# RoPE scaling types transformers has for the Llama lineage, on teachers whose pretraining length (8) the
# 17-token test sequence exceeds, so that the long-sequence branches (dynamic, longrope) are taken too.
ROPE_SCALINGS = {
    "llama3": ("llama", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8}),
    "linear": ("llama", {"rope_type": "linear", "factor": 2.0}),
    "dynamic": ("llama", {"rope_type": "dynamic", "factor": 2.0}),
    "yarn": ("qwen2", {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8}),
    "longrope": ("phi3", {"rope_type": "longrope", "short_factor": [1.0, 1.1], "long_factor": [1.5, 3.0]}),
}


def scaled_rope_teacher(kind: str, path) -> transformers.PreTrainedModel:
    family, scaling = ROPE_SCALINGS[kind]
    config = tiny_hf_config(family)
    short = 8 if kind != "dynamic" else 10
    config.rope_parameters = config.rope_parameters | scaling
    if family == "phi3":  # its partial rotary (0.5): two frequencies
        config.original_max_position_embeddings = short
    if kind == "dynamic":
        config.max_position_embeddings = short
    model = tiny_hf_model(family, config=config)
    model.save_pretrained(path)
    return model


@pytest.mark.parametrize("kind", list(ROPE_SCALINGS))
def test_rope_scaling_matches_transformers_and_round_trips(kind, tokens, tmp_path):
    reference = scaled_rope_teacher(kind, tmp_path / "hf")
    ours = load_model(tmp_path / "hf")
    assert ours.config.rope_scaling["rope_type"] == kind
    for length in (6, tokens.shape[1]):  # within and beyond the pretraining length
        with torch.no_grad():
            diff = (ours(tokens[:, :length]) - hf_logits(reference, tokens[:, :length])).abs().max().item()
        assert diff <= TOL, f"{kind}, {length} tokens: max |Δlogits| = {diff}"
    as_v4 = json.loads((tmp_path / "hf/config.json").read_text())  # as checkpoints of transformers 4 spell it
    scaling = as_v4.pop("rope_parameters")
    as_v4 |= {"rope_theta": scaling.pop("rope_theta"), "rope_scaling": scaling}
    (tmp_path / "hf/config.json").write_text(json.dumps(as_v4))
    assert load_model(tmp_path / "hf").config == ours.config
    save_model(ours, tmp_path / "out")
    assert json.loads((tmp_path / "out/config.json").read_text())["model_type"] == ROPE_SCALINGS[kind][0]
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert (hf_logits(again, tokens) - hf_logits(reference, tokens)).abs().max().item() <= TOL


def write_config(path, **changes) -> None:
    raw = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(raw | changes))


@pytest.mark.parametrize(("family", "changes", "named"), [
    ("llama", {"rope_parameters": {"rope_type": "proportional", "rope_theta": 1e4}}, "'proportional'"),
    ("mistral", {"sliding_window": 16}, "sliding-window attention"),
    ("llama", {"model_type": "gemma2"}, "soft-capping"),
    ("llama", {"model_type": "gemma3_text"}, "sliding-window attention"),
])
def test_what_the_decoder_cannot_hold_is_refused_by_name(family, changes, named, tmp_path):
    save_tiny(family, tmp_path / "m")
    write_config(tmp_path / "m", **changes)
    with pytest.raises(UsageError) as err:
        load_model(tmp_path / "m")
    assert named in str(err.value) and "\n" not in str(err.value)


def test_a_tensor_no_weight_map_uses_fails_the_load_by_name(family, tmp_path):
    """A config that describes fewer layers than the weights hold loses nothing silently."""
    save_tiny(family, tmp_path / "m")
    write_config(tmp_path / "m", **{"n_layer" if family == "gpt2" else "num_hidden_layers": 1})
    with pytest.raises(UsageError) as err:
        load_model(tmp_path / "m")
    assert re.search(r"tensor\(s\) .* the first '[a-z_.]*(layers|h)\.[12]\.", str(err.value)), str(err.value)


def test_weights_are_read_lazily_in_the_checkpoints_own_dtype(tmp_path):
    reference = tiny_hf_model("qwen3").to(torch.bfloat16)
    reference.save_pretrained(tmp_path / "m")
    weights = read_weights(tmp_path / "m")
    assert sorted(weights.unread()) == sorted(weights)  # opening reads nothing
    assert weights["model.norm.weight"].dtype == torch.bfloat16 and "model.norm.weight" not in weights.unread()
    model = load_model(tmp_path / "m", dtype=None)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert torch.equal(model.blocks[1].attn.k_norm.weight, reference.model.layers[1].self_attn.k_norm.weight)
