"""`headstart select` and the pipeline's select step: the student chosen among a search's best candidates by
successive halving of short trainings, its winner a spec that extract reads; resumed; bad input refused."""

from __future__ import annotations

import json

import pytest
import yaml
from train_support import make_search_world, one_thread  # noqa: F401 (one_thread: autouse)

from headstart import api
from headstart.cli.main import main
from headstart.pipeline import load_pipeline, plan

TRAINING = ["--seq-len", "16", "--batch-size", "4", "--micro-batch-size", "4", "--eval-tokens", "128"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_search_world(tmp_path_factory.mktemp("select"))


def test_select_halves_the_candidates_and_its_winner_is_a_spec_extract_reads(world, tmp_path, capsys):
    out = tmp_path / "select"
    argv = ["select", "--search", str(world["search"]), "--teacher", str(world["teacher"]), "--data",
            str(world["data"]), "--out", str(out), "--candidates", "3", "--tokens", "64", *TRAINING, "--json"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed.strip().splitlines()[-1])
    halving = json.loads((out / "halving.json").read_text())
    assert [len(r["candidates"]) for r in halving["rungs"]] == [3, 2, 1]
    assert summary["compute"]["tokens"] == 3 * 64 + 2 * 128 + 256 and summary["equal_compute"] is None
    best = json.loads((out / "best.json").read_text())
    assert best["candidate"] == summary["winner"]["candidate"] == halving["rungs"][-1]["candidates"][0]["candidate"]
    assert best["trained_perplexity"] == summary["winner"]["trained_perplexity"]
    assert "selected candidate" in printed and (out / "select_config.json").is_file()
    made_by = f"`headstart select --search {world['search']} --teacher {world['teacher']} --data {world['data']} " \
              f"--out {out} --candidates 3 --tokens 64 --seq-len 16 --batch-size 4 --micro-batch-size 4 " \
              "--eval-tokens 128`"
    assert made_by in (out / "halving.md").read_text()
    student = api.extract(teacher=str(world["teacher"]), spec=str(out / "best.json"), out=str(tmp_path / "student"))
    assert student.params == best["params"]

    assert main(argv) == 0  # a rerun trains nothing again
    assert capsys.readouterr().out.count("(trained before)") == 6


def test_select_refuses_bad_input_in_one_line(world, tmp_path, capsys, monkeypatch):
    common = ["--teacher", str(world["teacher"]), "--data", str(world["data"]), "--out", str(tmp_path / "o")]
    for flags, says in (([], "missing --search"), (["--search", str(world["search"]), "--eta", "1"],
                                                                     "--eta must be at least 2, got 1"),
                        (["--search", str(world["search"]), "--kd", "nope"], "nope"),
                        (["--search", str(tmp_path / "nowhere")], "not a search folder")):
        assert main(["select", *common, *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err, err
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["select", *common, "--search", str(world["search"])]) == 2
    assert "not under torchrun" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_recipes_select_section_trains_candidates_like_the_student_and_extract_reads_its_winner(world, tmp_path):
    raw = {"out": str(tmp_path / "run"), "teacher": str(world["teacher"]), "data": str(world["data"]),
           "search": {"budget": "50%", "evals": 4, "tokens": 128, "seq_len": 16},
           "select": {"candidates": 4, "tokens": 2000},
           "train": {"kd": "reverse_kl", "tokens": 4096, "seq_len": 16, "batch_size": 4, "micro_batch_size": 4,
                     "lr": 0.003, "eval_tokens": 128}}
    steps = {step.name: step for step in plan(load_pipeline(raw))}
    assert list(steps)[:4] == ["importance", "search", "select", "extract"]
    select = steps["select"].config
    assert (select.search, select.out) == (str(tmp_path / "run" / "search"), str(tmp_path / "run" / "select"))
    assert (select.kd, select.lr, select.seq_len, select.eval_tokens, select.candidates) == (
        "reverse_kl", 0.003, 16, 128, 4)
    assert steps["extract"].config.spec == str(tmp_path / "run" / "select" / "best.json")
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**raw, "select": {"lr": 0.1}}))
    assert main(["run", "--config", str(path)]) == 2  # trained like the student: the pipeline sets it

    path.write_text(yaml.safe_dump({**raw, "select": {"candidates": 2, "tokens": 64}, "baselines": {"random": {}},
                                    "train": {**raw["train"], "tokens": 256}}))
    assert main(["run", "--config", str(path)]) == 0
    result = json.loads((tmp_path / "run" / "eval.json").read_text())
    winner = json.loads((tmp_path / "run" / "select" / "best.json").read_text())
    assert result["subnetwork"]["selected"]["candidate"] == winner["candidate"]
    assert result["subnetwork"]["params"] == winner["params"]
    student = result["comparison"]["arms"]["student"]  # raced with the selection's 2·64 + 128 tokens charged
    assert "its selection's 256 tokens counted" in student["label"] and student["curve"][0][0] == 256
    assert "halving over its best candidates" in (tmp_path / "run" / "report.md").read_text()


def test_select_says_when_the_search_holds_fewer_candidates_than_asked(world, tmp_path, capsys):
    argv = ["select", "--search", str(world["search"]), "--teacher", str(world["teacher"]), "--data",
            str(world["data"]), "--out", str(tmp_path / "select"), "--candidates", "7", "--tokens", "16", *TRAINING]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "the search holds 6 candidates, fewer than --candidates 7: all of them enter the first rung" in captured.err
    halving = json.loads((tmp_path / "select" / "halving.json").read_text())
    assert [len(r["candidates"]) for r in halving["rungs"]] == [6, 3, 2, 1]
