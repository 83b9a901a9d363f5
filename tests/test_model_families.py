"""headstart's decoder gives the same logits as transformers' own implementation, for every family."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from conftest import save_tiny

from headstart.errors import UsageError
from headstart.model import DecoderConfig, LayerShape, load_model, register_auto_classes, save_model
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
