"""`headstart eval` and `headstart init` end to end, and their bad input: one line, exit code 2."""

from __future__ import annotations

import json

import pytest
from train_support import make_data, make_model

from headstart.cli.main import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    return make_data(root), make_model(root / "model", root / "tokenizer"), root


def test_eval_prints_loss_perplexity_and_a_json_summary(setup, capsys):
    data, model, _ = setup
    assert main(["eval", "--model", str(model), "--data", str(data), "--tokens", "512", "--seq-len", "32",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["tokens"] == 512 and summary["seq_len"] == 32
    assert 1 < summary["perplexity"] < 1000 and summary["tokens_per_s"] > 0


def test_eval_says_when_the_split_or_the_context_is_shorter_than_asked(setup, capsys):
    data, model, _ = setup
    context = json.loads((model / "config.json").read_text())["max_position_embeddings"]
    assert main(["eval", "--model", str(model), "--data", str(data), "--tokens", "1G", "--seq-len",
                 str(context * 2), "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["seq_len"] == context and summary["tokens"] < 10**9
    assert (f"warning: scoring on windows of {context} tokens, the model {model}'s context, not {context * 2} and "
            f"{summary['tokens']:,} tokens, all the validation split holds, not 1,000,000,000") in err, err


def test_init_writes_a_random_model_of_the_architecture(setup, tmp_path, capsys):
    data, model, root = setup
    assert main(["init", "--architecture", str(model / "config.json"), "--tokenizer", str(root / "tokenizer"),
                 "--out", str(tmp_path / "init"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["family"] == "gpt_neox" and summary["params"] > 0
    assert main(["eval", "--model", str(tmp_path / "init"), "--data", str(data), "--tokens", "256",
                 "--seq-len", "32"]) == 0


def bad_cases(data, model, root, tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for f in model.iterdir():
        (corrupt / f.name).write_bytes(f.read_bytes())
    weights = corrupt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    other = make_data(tmp_path / "other", n_words=30)
    return {
        "missing model": (["--model", str(tmp_path / "nope"), "--data", str(data)], "does not exist"),
        "not a model": (["--model", str(root / "tokenizer"), "--data", str(data)], "not a model folder"),
        "corrupt weights": (["--model", str(corrupt), "--data", str(data)], "corrupt or truncated"),
        "missing data": (["--model", str(model), "--data", str(tmp_path / "nodata")], "manifest"),
        "other tokenizer": (["--model", str(model), "--data", str(other)], "tokenized with tokenizer"),
    }


@pytest.mark.parametrize("case", ["missing model", "not a model", "corrupt weights", "missing data",
                                  "other tokenizer"])
def test_eval_bad_input_is_one_line_and_exit_2(setup, tmp_path, capsys, case):
    argv, message = bad_cases(*setup, tmp_path)[case]
    assert main(["eval", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
