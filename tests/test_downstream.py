"""Zero-shot multiple-choice evaluation: the prompts, the log-likelihoods, the accuracy, the command."""

from __future__ import annotations

import functools
import json

import pytest
import torch
import torch.nn.functional as F
import transformers
from conftest import word_tokenizer
from evalset_support import ROWS
from train_support import make_model, one_thread  # noqa: F401 (one_thread: autouse)

from headstart.cli.main import main
from headstart.errors import UsageError
from headstart.eval import downstream
from headstart.eval.downstream import continuation_logprobs, evaluate_task, score_items
from headstart.eval.tasks import TASKS, Item, load_task
from headstart.model import load_model
from headstart.model.checkpoint import resolve_model_dir
from headstart.progress import progress_bar

EXPECTED = {  # (context of the right choice, its continuation, gold)
    "hellaswag": ("Roof shingle removal: A man is on a roof. He", " starts pulling up roofing.", 1),
    "piqa": ("Question: Open a jar\nAnswer:", " Twist the lid.", 0),
    "arc_easy": ("Question: Which is newest?\nAnswer:", " phone", 0),
    "arc_challenge": ("Question: Q?\nAnswer:", " z", 2),
    "openbookqa": ("Sharks live", " high", 1),
    "sciq": ("Evolution.\nQuestion: Who?\nAnswer:", " darwin", 3),
    "winogrande": ("Sarah beat Maria so Sarah", " won.", 0),
    "boolq": ("It is.\nQuestion: is it?\nAnswer:", " yes", 1),
    "copa": ("The man turned on the tap therefore", "  water ran.", 0),  # lm-eval's choice has its own space
    "social_iqa": ("Q: Tracy left. Why?\nA:", " c", 2),
    "commonsense_qa": ("Question: Where?\nAnswer:", " mall", 1),
}


def test_every_task_builds_the_harness_prompt(evalsets):
    assert set(ROWS) == set(TASKS)
    for task, (context, continuation, gold) in EXPECTED.items():
        items = load_task(task, limit=2)
        assert len(items) == 2 and items[0].gold == gold, task
        assert (items[0].contexts[gold], items[0].continuations[gold]) == (context, continuation), task
    assert len(load_task("piqa")) == 3


def test_an_unfetched_or_unknown_task_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="evalsets/olmo is not fetched"):
        load_task("piqa")
    with pytest.raises(UsageError, match="unknown task 'lambada'"):
        load_task("lambada")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    folder = make_model(root / "model", word_tokenizer(root / "tok", 40), vocab=42)  # GPT-NeoX, context 64
    return folder


def reference_logprob(hf_model, context: list[int], continuation: list[int]) -> float:
    ids = torch.tensor([context + continuation])
    logp = F.log_softmax(hf_model(ids).logits[0, :-1].float(), -1)
    return sum(logp[len(context) - 1 + j, t].item() for j, t in enumerate(continuation))


def test_log_likelihoods_match_transformers_in_any_batch(tiny):
    hf = transformers.AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    model = load_model(tiny)
    gen = torch.Generator().manual_seed(0)
    pairs = [(torch.randint(2, 42, (int(n),), generator=gen).tolist(), torch.randint(2, 42, (int(m),),
              generator=gen).tolist()) for n, m in [(5, 1), (20, 3), (1, 7), (12, 12), (3, 2)]]
    expected = [reference_logprob(hf, c, x) for c, x in pairs]
    for batch_size in (1, 2, 8):
        assert continuation_logprobs(model, pairs, batch_size) == pytest.approx(expected, abs=1e-4)


def test_a_sequence_longer_than_the_context_keeps_its_end(tiny):
    hf = transformers.AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    context, continuation = [(i % 40) + 2 for i in range(100)], [5, 6, 7]
    kept = (context + continuation)[-65:]  # the model's 64 positions, plus the last target
    got = continuation_logprobs(load_model(tiny), [(context, continuation)])[0]
    assert got == pytest.approx(reference_logprob(hf, kept[:-3], kept[-3:]), abs=1e-4)


def test_accuracy_and_length_normalised_accuracy(tiny, monkeypatch):
    items = [Item(["c", "c"], [" a", " bbbbbbbbbb"], 1, ["a", "bbbbbbbbbb"]), Item(["c", "c"], [" a", " b"], 0,
                                                                                 ["a", "b"]),
             Item(["c", "c"], [" ééé", " bbbbb"], 0, ["ééé", "bbbbb"])]
    # item 1: raw picks " a", per character the long one; item 3: raw and per byte "ééé" (-0.5 vs -0.8 for 6 and
    # 5 bytes), per character "bbbbb" (-1.0 vs -0.8 for 3 and 5): lm-eval divides by the choice, without its space
    scores = iter([[-1.0, -5.0, -2.0, -1.0, -3.0, -4.0]])
    monkeypatch.setattr(downstream, "continuation_logprobs", lambda *a, **k: next(scores))
    tok = transformers.AutoTokenizer.from_pretrained(tiny)
    assert score_items(load_model(tiny), tok, items) == {"acc": 1 / 3, "acc_norm": 1 / 3, "acc_bytes": 2 / 3}


def test_eval_command_reports_each_task(evalsets, tiny, capsys):
    assert main(["eval", "--model", str(tiny), "--tasks", "piqa", "winogrande", "--limit", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["tasks"]) == {"piqa", "winogrande"}
    assert summary["tasks"]["piqa"]["items"] == 2 and summary["tasks"]["piqa"]["chance"] == 0.5
    assert main(["eval", "--model", str(tiny)]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    assert main(["eval", "--model", str(tiny), "--tasks", "piqa", "lambada"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "unknown task 'lambada'" in err


def test_a_long_evaluation_reports_progress_in_a_log(evalsets, tiny, monkeypatch, capsys):
    """Outside a terminal too: dated lines per task (here every update; by default every 30 s)."""
    monkeypatch.setattr(downstream, "progress_bar", functools.partial(progress_bar, interval=0.0))
    evaluate_task(load_model(tiny), "piqa", batch_size=1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and all(" piqa: " in line for line in lines) and "6/6" in lines[-1], lines


def test_perplexity_reports_progress_in_a_log_when_asked(tiny, monkeypatch, capsys):
    from headstart.eval import perplexity

    monkeypatch.setattr(perplexity, "progress_bar", functools.partial(progress_bar, interval=0.0))
    windows = torch.randint(0, 42, (4, 9), generator=torch.Generator().manual_seed(0))
    perplexity.evaluate_windows(load_model(tiny), windows, batch_size=1, progress=True)
    assert "4/4" in capsys.readouterr().err.splitlines()[-1]
    perplexity.evaluate_windows(load_model(tiny), windows, batch_size=1)  # training's validation: quiet
    assert capsys.readouterr().err == ""


def test_smollm2_beats_chance_on_piqa():
    try:
        model = load_model(resolve_model_dir("smollm2-135m"))
        result = evaluate_task(model, "piqa", limit=40)
    except UsageError:
        pytest.skip("SmolLM2-135M or the evaluation sets are not fetched (run `headstart assets`)")
    assert result.items == 40 and result.acc > 0.6  # chance is 0.5
