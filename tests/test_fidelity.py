"""Does untrained perplexity predict trained quality: the candidate choice, the rank correlations, and the
whole run on a tiny search (extract, train with KD, report; a rerun trains nothing), and successive halving."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from train_support import make_model, make_search_world, one_thread  # noqa: F401 (one_thread: autouse)

from headstart.compare.fidelity import (
    Candidate,
    average_ranks,
    choose_candidates,
    kendall,
    read_search,
    spearman,
    successive_halving,
)

SETTINGS = {"seq_len": 16, "batch_size": 4, "micro_batch_size": 4, "eval_every": 2, "eval_tokens": 128}
SCRIPT = Path(__file__).parents[1] / "recipes" / "study" / "rank_correlation.py"


def script_main(argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location("rank_correlation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_search_world(tmp_path_factory.mktemp("fidelity"))


def candidates(perplexities: list[float]) -> list[Candidate]:
    return [Candidate(i, f"k{i}", i, 1000, p, {}) for i, p in enumerate(perplexities)]


def test_the_choice_spaces_ranks_evenly_and_keeps_the_best_and_the_last_of_the_pool():
    searched = candidates([10, 20, 30, 40, 50, 60, 70])
    assert [c.index for c in choose_candidates(searched, 3)] == [0, 3, 6]
    assert [c.index for c in choose_candidates(searched, 4, pool=5)] == [0, 1, 3, 4]
    assert [c.index for c in choose_candidates(searched, 9)] == list(range(7))  # fewer than asked: all
    assert [c.index for c in choose_candidates(searched, 1)] == [0]


def test_rank_correlations_on_known_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 400]) == pytest.approx(1.0)
    assert kendall([1, 2, 3, 4], [10, 20, 30, 400]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert kendall([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one swap among five: rho = 1 - 6·4 / (5·24) = 0.8; tau = (8 - 2) / 10
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert kendall([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.6)
    # ties: average ranks (1.5, 1.5, 3); tau-b counts the tied pair on neither side
    assert list(average_ranks([5, 5, 7])) == [1.5, 1.5, 3.0]
    assert spearman([1, 2, 3], [5, 5, 7]) == pytest.approx(1.5 / math.sqrt(3))
    assert kendall([1, 2, 3], [5, 5, 7]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4])) and math.isnan(kendall([1, 2, 3], [4, 4, 4]))


def test_three_candidates_are_trained_reported_and_not_trained_again(world, capsys, tmp_path):
    out = tmp_path / "fidelity"
    argv = ["--search", str(world["search"]), "--teacher", str(world["teacher"]), "--data", str(world["data"]),
            "--out", str(out), "--candidates", "3", "--tokens", "256",
            *[x for k, v in SETTINGS.items() for x in (f"--{k.replace('_', '-')}", str(v))]]
    assert script_main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "fidelity.json").read_text())
    _, searched = read_search(world["search"])
    rows = result["candidates"]
    assert [r["candidate"] for r in rows] == [c.name for c in choose_candidates(searched, 3)]
    assert rows[0]["candidate"] == "000" and result["search_best"] == "000"
    for row in rows:
        assert (out / "candidates" / row["candidate"] / "student" / "config.json").is_file()
        assert row["tokens"] == 256 and math.isfinite(row["trained_perplexity"])
        assert row["trained_perplexity"] < row["untrained_validation_perplexity"]  # the training did something
        assert f"candidate {row['candidate']} " in printed
    trained = [r["trained_perplexity"] for r in rows]
    assert result["spearman"] == pytest.approx(spearman([r["untrained_perplexity"] for r in rows], trained))
    best = min(rows, key=lambda r: r["trained_perplexity"])
    assert result["trained_best"] == best["candidate"]
    assert result["gap"]["perplexity"] == pytest.approx(rows[0]["trained_perplexity"] - best["trained_perplexity"])
    assert f"{result['spearman']:.3f}" in (out / "fidelity.md").read_text()
    assert (out / "fidelity.png").stat().st_size > 0
    metrics = {r["candidate"]: (Path(r["run"]) / "metrics.jsonl").stat().st_mtime_ns for r in rows}

    assert script_main(argv) == 0
    again = capsys.readouterr().out
    assert again.count("(trained before)") == 3
    assert {r["candidate"]: (Path(r["run"]) / "metrics.jsonl").stat().st_mtime_ns for r in rows} == metrics
    assert json.loads((out / "fidelity.json").read_text())["candidates"] == rows

    (Path(rows[1]["run"]) / "summary.json").unlink()  # cut off after its last checkpoint: resumed, not retrained
    assert script_main(argv) == 0
    assert capsys.readouterr().out.count("(trained before)") == 2
    assert json.loads((Path(rows[1]["run"]) / "summary.json").read_text())["resumed_at"] == 4
    assert json.loads((out / "fidelity.json").read_text())["candidates"] == rows

    assert script_main([*argv, "--candidates", "2", "--pool", "4"]) == 0  # of the best 4: 000 and 003
    pooled = json.loads((out / "fidelity-pool4.json").read_text())
    assert [r["candidate"] for r in pooled["candidates"]] == ["000", "003"] and pooled["pool"] == 4
    assert pooled["markdown"] == str(out / "fidelity-pool4.md") and (out / "fidelity-pool4.png").is_file()
    assert capsys.readouterr().out.count("(trained before)") == 1  # 000 was trained for the whole range
    assert json.loads((out / "fidelity.json").read_text())["candidates"] == rows


def test_successive_halving_keeps_the_better_half_and_counts_its_compute(world, tmp_path):
    result = successive_halving(world["search"], str(world["teacher"]), str(world["data"]), tmp_path / "halving",
                                candidates=3, tokens=128, settings=SETTINGS)
    rungs = result["rungs"]
    assert [len(r["candidates"]) for r in rungs] == [3, 2, 1] and [r["tokens"] for r in rungs] == [128, 256, 512]
    first = sorted(rungs[0]["candidates"], key=lambda r: r["trained_perplexity"])
    assert {r["candidate"] for r in rungs[1]["candidates"]} == {r["candidate"] for r in first[:2]}
    assert {r["candidate"] for r in rungs[0]["candidates"]} == {"000", "001", "002"}  # the best 3 untrained
    assert result["compute"]["tokens"] == 3 * 128 + 2 * 256 + 512
    assert result["winner"] == rungs[-1]["candidates"][0]
    assert result["equal_compute"]["candidate"] == "000" and result["equal_compute"]["tokens"] == 1408
    assert (tmp_path / "halving" / "halving.md").is_file()


def test_bad_input_is_one_line_and_exit_2(world, tmp_path, capsys):
    common = ["--teacher", str(world["teacher"]), "--data", str(world["data"]), "--out", str(tmp_path / "o")]
    assert script_main(["--search", str(tmp_path / "nowhere"), *common]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a search folder" in err
    other = make_model(tmp_path / "other", world["root"] / "tokenizer", "teacher", seed=5)
    assert script_main(["--search", str(world["search"]), "--teacher", str(other),
                        *common[2:], "--candidates", "2", "--tokens", "64"]) == 2
    assert "weights differ" in capsys.readouterr().err
    assert script_main(["--search", str(world["search"]), *common, "--tokens", "0"]) == 2
    assert "--tokens must be at least 1" in capsys.readouterr().err
    for flags, says in ((["--candidates", "0"], "--candidates 0"), (["--pool", "0"], "--pool 0"),
                        (["--kd", "nope"], "nope")):
        assert script_main(["--search", str(world["search"]), *common, *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err, err
    assert not (tmp_path / "o" / "candidates").exists()
