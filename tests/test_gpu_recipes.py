"""recipes/gpu: both recipes plan and parse every step, their estimates are what estimate.py makes, and each
runs end to end on a CPU with every one of its settings, only the sizes shrunk (and compile off)."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from conftest import word_tokenizer
from train_support import make_model, markov_documents, one_thread  # noqa: F401 (one_thread: autouse)

from headstart.pipeline import load_pipeline, plan, run_pipeline

RECIPES = ("pythia-410m-half.yaml", "llama-3.2-1b-quarter.yaml")
FOLDER = Path(__file__).resolve().parents[1] / "recipes" / "gpu"


def load_estimate():
    spec = importlib.util.spec_from_file_location("estimate", FOLDER / "estimate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", RECIPES)
def test_a_gpu_recipe_plans_and_parses_every_step(name):
    recipe = load_pipeline(FOLDER / name)
    steps = plan(recipe)
    assert [step.name for step in steps] == ["prepare", "importance", "search", "extract", "train", "eval", "eval"]
    for step in steps:
        step.config.validate()
        cfg = step.config
        if step.command == "train":
            assert cfg.compile and cfg.async_checkpoints and cfg.kd == "forward_kl"
        if step.command == "prepare":
            assert cfg.input[0].startswith("hf:") and cfg.max_tokens > 2 * 10**9


def test_the_committed_estimates_are_what_estimate_py_makes_and_every_gpu_fits():
    estimate = load_estimate()
    rows = [estimate.estimate(name) for name in RECIPES]
    assert (FOLDER / "estimates.md").read_text() == estimate.markdown(rows)
    assert all(r["memory_gib_per_gpu"] < 0.9 * g["memory_gib"] for r in rows for g in r["gpus"])


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_a_gpu_recipe_runs_end_to_end_on_a_cpu_when_shrunk(tmp_path, name):
    tok = word_tokenizer(tmp_path / "tokenizer", 40)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in markov_documents(40, 200, seed=0)))
    raw = yaml.safe_load((FOLDER / name).read_text())
    raw["out"], raw["teacher"] = str(tmp_path / "run"), str(make_model(tmp_path / "teacher", tok, "teacher"))
    raw["prepare"] |= {"input": [str(corpus)], "max_tokens": 4000, "val_fraction": 0.2}
    raw["search"] |= {"evals": 2, "tokens": 256, "seq_len": 32}
    raw["train"] |= {"tokens": 2 * 4 * 32, "seq_len": 32, "batch_size": 4, "micro_batch_size": 2, "compile": False,
                     "eval_every": 1, "eval_tokens": 256, "checkpoint_every": 1}
    (tmp_path / name).write_text(yaml.safe_dump(raw))
    summaries = run_pipeline(load_pipeline(tmp_path / name))["steps"]
    assert summaries["train"]["steps"] == 2 and (tmp_path / "run" / "train" / "final" / "config.json").is_file()
    assert 4000 <= sum(s["tokens"] for s in summaries["prepare"]["splits"].values()) < 4500
