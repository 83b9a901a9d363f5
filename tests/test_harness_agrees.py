"""headstart's downstream scores are lm-evaluation-harness's: its own tasks, on the same offline items.

lm-eval (a test extra) builds each task from its installed YAML, pointed at the evalsets files;
`headstart eval --tasks` must give the same log-likelihood for every choice, and so the same
acc, acc_norm and acc_bytes. Skipped only where lm-eval is not installed.
"""

from __future__ import annotations

import json

import pytest
from evalset_support import ROWS
from train_support import make_model, one_thread  # noqa: F401 (one_thread: autouse)

from headstart.cli.main import main
from headstart.data import load_tokenizer, train_bpe, vocab_size
from headstart.eval.downstream import item_logprobs
from headstart.eval.harness import LM_EVAL_YAML, evaluate_with_lm_eval
from headstart.eval.tasks import load_task
from headstart.model import load_model

pytest.importorskip("lm_eval")
HARNESS_TASKS = list(LM_EVAL_YAML)


def texts(value) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in texts(v)]
    return [value] if isinstance(value, str) else []


@pytest.fixture
def model(tmp_path):
    """A random GPT-NeoX with a byte-level BPE learnt on the task rows, so every choice has tokens of its own."""
    tok = train_bpe(texts(list(ROWS.values())) * 5, 300, tmp_path / "tok")
    return make_model(tmp_path / "model", tmp_path / "tok", vocab=vocab_size(tok), seed=3)


def test_headstart_eval_gives_lm_evals_likelihoods_and_accuracies_on_the_same_items(evalsets, model, capsys):
    harness = evaluate_with_lm_eval(model, HARNESS_TASKS, limit=None, batch_size=4, device="cpu")
    capsys.readouterr()
    assert main(["eval", "--model", str(model), "--tasks", *HARNESS_TASKS, "--limit", "0", "--json"]) == 0
    ours = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["tasks"]
    ours_model, tok = load_model(model), load_tokenizer(model)
    for task in HARNESS_TASKS:
        items = load_task(task)
        samples = sorted(harness[task]["samples"], key=lambda s: s["doc_id"])
        theirs = [[resp[0][0] for resp in s["resps"]] for s in samples]
        assert item_logprobs(ours_model, tok, items) == [pytest.approx(t, abs=1e-4) for t in theirs], task
        for metric in ("acc", "acc_norm", "acc_bytes"):
            assert ours[task][metric] == harness[task][metric], (task, metric)
        assert ours[task]["items"] == harness[task]["items"] == 3


def test_the_lm_eval_backend_runs_lm_eval_and_refuses_what_it_does_not_hold(evalsets, model, capsys):
    assert main(["eval", "--model", str(model), "--tasks", "piqa", "--backend", "lm-eval", "--json"]) == 0
    out = capsys.readouterr().out
    assert "lm-eval" in out and json.loads(out.strip().splitlines()[-1])["tasks"]["piqa"]["items"] == 3
    assert main(["eval", "--model", str(model), "--tasks", "commonsense_qa", "--backend", "lm-eval"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "commonsense_qa is not lm-eval's" in err


def test_an_item_lm_eval_cannot_score_is_one_line_naming_its_check_and_headstart_scores_it(evalsets, model, capsys):
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"max_position_embeddings": 4}))  # answers are longer
    assert main(["eval", "--model", str(model), "--tasks", "piqa", "--backend", "lm-eval"]) == 2
    err = capsys.readouterr().err.strip().split("\n")[-1]  # after lm-eval's progress bars, on the last one's line
    assert err.count("error:") == 1 and "headstart eval: error: lm-eval refused an item of piqa" in err, err
    assert "max_length" in err and "--backend headstart" in err
    assert main(["eval", "--model", str(model), "--tasks", "piqa"]) == 0
