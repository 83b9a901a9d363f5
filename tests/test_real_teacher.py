"""The real SmolLM2-135M teacher: headstart's decoder matches transformers on it (skips when not fetched)."""

from __future__ import annotations

import pytest
import torch
import transformers

from headstart.errors import UsageError
from headstart.model import load_model, save_model
from headstart.model.checkpoint import resolve_model_dir


@pytest.fixture(scope="module")
def smollm2_dir():
    try:
        return resolve_model_dir("smollm2-135m")
    except UsageError:
        pytest.skip("SmolLM2-135M is not fetched (run `headstart assets`)")


@pytest.fixture(scope="module")
def text_tokens(smollm2_dir) -> torch.Tensor:
    tok = transformers.AutoTokenizer.from_pretrained(smollm2_dir)
    text = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be"
    return torch.tensor([tok(text)["input_ids"]])


def test_smollm2_logits_match_transformers(smollm2_dir, text_tokens):
    ours = load_model(smollm2_dir)
    assert sum(p.numel() for p in ours.parameters()) == 134_515_008
    reference = transformers.AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        diff = (ours(text_tokens) - reference(text_tokens).logits).abs().max().item()
    assert diff <= 1e-3


def test_smollm2_export_round_trip(smollm2_dir, text_tokens, tmp_path):
    ours = load_model(smollm2_dir)
    save_model(ours, tmp_path / "copy")
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "copy", dtype=torch.float32).eval()
    assert type(again).__name__ == "LlamaForCausalLM"
    with torch.no_grad():
        diff = (ours(text_tokens) - again(text_tokens).logits).abs().max().item()
    assert diff <= 1e-3
    assert transformers.AutoTokenizer.from_pretrained(tmp_path / "copy")("Hello")["input_ids"] == \
        transformers.AutoTokenizer.from_pretrained(smollm2_dir)("Hello")["input_ids"]
