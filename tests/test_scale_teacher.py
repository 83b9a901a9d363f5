"""The shipped scale-model teacher: plain transformers loads it, and it scores what its card says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers
import yaml

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


def test_it_stops_at_its_tokenizers_end_of_text():
    model = transformers.AutoModelForCausalLM.from_pretrained(TEACHER)
    eos = transformers.AutoTokenizer.from_pretrained(TEACHER).eos_token_id
    assert model.config.eos_token_id == model.generation_config.eos_token_id == eos == 0  # GPT-NeoX's default is 2
    assert json.loads((TEACHER / "generation_config.json").read_text())["eos_token_id"] == eos


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



def test_it_is_what_its_recipe_makes():
    recipe = Path(__file__).resolve().parent.parent / "recipes" / "scale-teacher"
    if not recipe.is_dir():
        pytest.skip("no recipes/ beside the installed package")
    architecture = json.loads((recipe / "architecture.json").read_text())
    shipped = json.loads((TEACHER / "config.json").read_text())
    assert {k: shipped[k] for k in architecture} == architecture
    settings = yaml.safe_load((recipe / "train.yaml").read_text())
    card = (TEACHER / "README.md").read_text()
    assert json.dumps({k: settings[k] for k in ("tokens", "seq_len", "batch_size", "lr")})[1:-1] in card
    assert "(clean)" in card  # trained by committed code
