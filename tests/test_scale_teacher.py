"""The shipped scale-model teacher: plain transformers loads it, and it scores what its card says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers

from headstart.assets import corpus_files
from headstart.errors import UsageError
from headstart.eval.text import evaluate_text
from headstart.model import load_model
from headstart.model.registry import SHIPPED_DIR, known_names

TEACHER = SHIPPED_DIR / "scale-teacher"

pytestmark = pytest.mark.skipif(not (TEACHER / "config.json").is_file(), reason="no shipped scale teacher")


def test_it_loads_as_gpt_neox_with_its_tokenizer_from_plain_transformers():
    model = transformers.AutoModelForCausalLM.from_pretrained(TEACHER)
    assert type(model).__name__ == "GPTNeoXForCausalLM"
    tok = transformers.AutoTokenizer.from_pretrained(TEACHER)
    assert len(tok) == model.config.vocab_size == 4096
    assert (TEACHER / "model.safetensors").stat().st_size < 20 * 2**20
    assert "scale-teacher" in known_names()


def test_it_scores_the_perplexity_its_card_states():
    card = json.loads((TEACHER / "evaluation.json").read_text())
    source, name = card["text"].split("/")
    try:
        text = next(p for p in corpus_files([source]) if p.name == name)
    except UsageError:
        pytest.skip("the corpus is not fetched (run `headstart assets`)")
    result = evaluate_text(load_model("scale-teacher"), Path(text), card["tokens"], card["seq_len"])
    assert result.tokens == card["tokens"]
    assert result.perplexity == pytest.approx(card["perplexity"], rel=1e-4)
    assert f"{card['perplexity']:.2f}" in (TEACHER / "README.md").read_text()

