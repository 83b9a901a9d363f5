"""headstart.api: the steps as Python functions with typed configs, and the example that chains them."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import yaml
from train_support import make_world, one_thread  # noqa: F401 (one_thread: autouse)

from headstart import SearchConfig, api
from headstart.cli.main import main
from headstart.errors import UsageError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "head_start.py"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_world(tmp_path_factory.mktemp("api"))


def test_the_example_searches_extracts_trains_and_evaluates_a_tiny_teacher(world, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("head_start_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    scores = example.head_start(str(world["teacher"]), str(world["data"]), str(tmp_path / "ex"), budget="50%",
                                evals=2, tokens=256, seq_len=16, batch_size=4, held_out=64)
    assert isinstance(scores, api.Evaluation) and scores.tokens == 64 and math.isfinite(scores.perplexity)
    assert "after 256 tokens of distillation" in capsys.readouterr().out
    for artifact in ("search/journal.jsonl", "search/best.json", "student/config.json", "train/final/config.json"):
        assert (tmp_path / "ex" / artifact).is_file(), artifact


def test_a_config_and_keyword_fields_are_the_same_call_and_the_result_is_the_commands_json(world, tmp_path,
                                                                                              capsys):
    cfg = SearchConfig(teacher=str(world["teacher"]), data=str(world["data"]), budget="50%", evals=2, tokens=64,
                       seq_len=16, out=str(tmp_path / "a"))
    first = api.search(cfg)
    again = api.search(cfg, out=str(tmp_path / "b"))  # a field replaced by keyword
    assert first.best == again.best and first.evaluations == again.evaluations == 2
    resumed = api.search(cfg)  # the same folder: replayed from its journal, nothing evaluated twice
    assert resumed.replayed == 2 and resumed.best == first.best
    assert json.loads(json.dumps(first.to_dict()))["best"] == first.best
    assert first.describe().startswith("best of 2 (0 from the journal)")
    saved = tmp_path / "b" / "search_config.json"  # the resolved config beside the outputs, a --config again
    assert SearchConfig(**json.loads(saved.read_text())) == SearchConfig(**cfg.to_dict() | {"out": str(tmp_path / "b")})
    assert main(["search", "--config", str(saved), "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == json.loads(saved.read_text())


def test_extract_takes_a_spec_as_a_mapping_as_its_result_gives_it(world, tmp_path):
    first = api.extract(teacher=str(world["teacher"]), spec='{"layers": 1}', out=str(tmp_path / "a"))
    again = api.extract(teacher=str(world["teacher"]), spec=first.spec, out=str(tmp_path / "b"))
    assert again.spec == first.spec and again.params == first.params < first.teacher_params


@pytest.mark.parametrize(("fields", "expected"), [
    ({"evals": 0}, "--evals must be at least 1, got 0"),
    ({"strategy": "evolutoin"}, "SearchConfig: strategy 'evolutoin' is unknown — did you mean evolution?"),
    ({"tokens": "lots"}, "SearchConfig: tokens 'lots' is not a valid int"),
    ({"budgett": "50%"}, "'budgett' is not a setting of SearchConfig — did you mean budget?"),
    ({"budget": ""}, "missing --budget"),
])  # fmt: skip
def test_bad_keyword_fields_are_usage_errors_before_any_work(world, tmp_path, fields, expected):
    base = {"teacher": str(world["teacher"]), "data": str(world["data"]), "budget": "50%", "out": str(tmp_path / "s")}
    with pytest.raises(UsageError, match=expected.replace("?", r"\?")):
        api.search(**(base | fields))
    assert not (tmp_path / "s").exists()


def test_run_takes_a_recipe_mapping_with_dotted_overrides_and_keeps_what_is_unchanged(world, tmp_path, capsys):
    recipe = {"out": str(tmp_path / "run"), "teacher": str(world["teacher"]), "data": str(world["data"]),
              "search": {"budget": "50%", "evals": 4, "tokens": 64, "seq_len": 16},
              "train": {"tokens": 256, "seq_len": 16, "batch_size": 4, "micro_batch_size": 4, "eval_tokens": 64}}
    result = api.run(recipe, **{"search.evals": 2})
    assert result["steps"]["search"]["evaluations"] == 2 and result["student"]["tokens"] == 256
    assert api.run(recipe, **{"search.evals": 2}) == result
    assert "nothing changed since the last run" in capsys.readouterr().out


def test_a_bf16_search_holds_the_teacher_in_bf16_and_scores_close_to_fp32(world, tmp_path):
    """Where the search computes in bf16 (GPUs by default; --precision bf16 here) the teacher is loaded in bf16,
    never as an fp32 copy: its journal records the bf16 weights, and the same first candidate scores alike."""
    import torch

    from headstart.model import load_model, weights_fingerprint
    from headstart.search.journal import read_header

    base = {"teacher": str(world["teacher"]), "data": str(world["data"]), "budget": "50%", "evals": 1,
            "tokens": 64, "seq_len": 16}
    fp32 = api.search(**base, out=str(tmp_path / "fp32"))
    bf16 = api.search(**base, precision="bf16", out=str(tmp_path / "bf16"))
    held = read_header(tmp_path / "bf16" / "journal.jsonl")["teacher_weights"]
    assert held == weights_fingerprint(load_model(world["teacher"], dtype=torch.bfloat16))
    assert held != read_header(tmp_path / "fp32" / "journal.jsonl")["teacher_weights"]
    assert bf16.best["key"] == fp32.best["key"]  # the first-k anchor, in both
    assert bf16.best["perplexity"] == pytest.approx(fp32.best["perplexity"], rel=0.05)
