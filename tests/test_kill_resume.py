"""Each long step (prepare, search, train, run) killed at several points, mid-write among them, and run again
with the same command: the result equals an uninterrupted run's, and a search loses at most the candidate
it was evaluating.

A kill is simulated in-process by `Killed`, a BaseException that no `except Exception` stops, raised at the
chosen point; where a real kill would leave half a file behind, the point writes that half first. One search
is killed for real, with SIGKILL, to hold the in-process simulation to the real thing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from train_support import json_lines_without, make_world, one_thread, sigkill_when, train_argv  # noqa: F401 (one_thread: autouse)

from headstart import atomic
from headstart.cli.main import main
from headstart.data import prepare as prepare_module
from headstart.data.shards import SplitWriter
from headstart.search import plots as search_plots
from headstart.search.journal import Journal
from headstart.search.objective import PerplexityObjective
from headstart.train import checkpoint as train_checkpoint
from headstart.train import loop as train_loop


class Killed(BaseException):
    """The process dies here: no code after this point of the step runs."""


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_world(tmp_path_factory.mktemp("kill_world"))


def die_on_call(patch: pytest.MonkeyPatch, owner, name: str, n: int,
                half_written: Callable | None = None) -> None:
    """Make the n-th call of owner.name die, after `half_written(*args)` (what a kill mid-write leaves)."""
    real, calls = getattr(owner, name), []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            if half_written is not None:
                half_written(*args, **kwargs)
            raise Killed
        return real(*args, **kwargs)

    patch.setattr(owner, name, dying)


def killed_then_rerun(argv: list[str], kill: Callable[[pytest.MonkeyPatch], None], rerun: list[str] | None = None):
    with pytest.MonkeyPatch.context() as patch:
        kill(patch)
        with pytest.raises(Killed):
            main(argv)
    assert main(rerun or argv) == 0


def stray_temp_file(path: str | Path, data: bytes) -> None:
    """What a kill leaves of an atomic write: a temporary file beside the target, half written."""
    path = Path(path)
    (path.parent / f".{path.name}.killed.tmp").write_bytes(data[: len(data) // 2])


# ---- prepare


def prepare_argv(world: dict, out: Path) -> list[str]:
    return ["prepare", "--train-tokenizer", "300", "--input", str(world["root"] / "corpus.jsonl"),
            "--val-fraction", "0.1", "--out", str(out)]


PREPARE_KILLS = {
    "training the tokenizer": lambda p: die_on_call(p, prepare_module, "train_bpe", 1),
    "mid-batch of shards": lambda p: die_on_call(p, SplitWriter, "write_document", 25),
    "mid-write of the progress record": lambda p: die_on_call(
        p, prepare_module, "write_json_atomic", 3, lambda path, obj: stray_temp_file(path, json.dumps(obj).encode())),
    "moving the finished folder into place": lambda p: die_on_call(p, atomic, "_move_into_place", 1),
}


def uninterrupted(tmp_path_factory, argv: Callable[[dict, Path], list[str]], world: dict, name: str) -> Path:
    """The folder of the step run once, start to finish: what every killed run must end up equal to."""
    out = tmp_path_factory.mktemp("uninterrupted") / name
    assert main(argv(world, out)) == 0
    return out


@pytest.fixture(scope="module")
def prepared(world, tmp_path_factory) -> Path:
    return uninterrupted(tmp_path_factory, prepare_argv, world, "data")


@pytest.mark.parametrize("point", PREPARE_KILLS)
def test_prepare_killed_resumes_to_the_same_bytes(world, prepared, tmp_path, monkeypatch, point):
    monkeypatch.setattr(prepare_module, "BATCH_CHARS", 2000)  # many batches, progress recorded after each
    out = tmp_path / "data"
    killed_then_rerun(prepare_argv(world, out), PREPARE_KILLS[point])
    for name in ("train-00000.bin", "validation-00000.bin", "tokenizer/tokenizer.json"):
        assert (out / name).read_bytes() == (prepared / name).read_bytes(), name
    ours, theirs = (json.loads((folder / "manifest.json").read_text()) for folder in (out, prepared))
    assert ours | {"created_by": None} == theirs | {"created_by": None}  # which names the --out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no work folder or temp file left


# ---- search


def search_argv(world: dict, out: Path, evals: int = 8) -> list[str]:
    return ["search", "--teacher", str(world["teacher"]), "--data", str(world["data"]), "--budget", "50%",
            "--evals", str(evals), "--population", "3", "--tournament", "2", "--tokens", "128", "--seq-len", "16",
            "--seed", "1", "--out", str(out)]


def half_a_journal_line(journal: Journal, record: dict) -> None:
    with journal.path.open("a") as f:
        f.write(json.dumps(record)[:40])


SEARCH_KILLS = {
    "evaluating the fourth candidate": lambda p: die_on_call(p, PerplexityObjective, "__call__", 4),
    "mid-write of the sixth journal line": lambda p: die_on_call(p, Journal, "_append", 7, half_a_journal_line),
    "writing the figures": lambda p: die_on_call(p, search_plots, "plot_progress", 1),
}


def journal_results(out: Path) -> list[dict]:
    return json_lines_without(out / "journal.jsonl", "seconds", "at")


@pytest.fixture(scope="module")
def searched(world, tmp_path_factory) -> Path:
    return uninterrupted(tmp_path_factory, search_argv, world, "search")


@pytest.mark.parametrize("point", SEARCH_KILLS)
def test_search_killed_replays_to_the_same_result(world, searched, tmp_path, capsys, point):
    out = tmp_path / "search"
    argv = [*search_argv(world, out), "--json"]
    with pytest.MonkeyPatch.context() as patch:
        SEARCH_KILLS[point](patch)
        with pytest.raises(Killed):
            main(argv)
    kept = len(journal_results(out)) - 1 if point != "mid-write of the sixth journal line" else 5
    if point == "evaluating the fourth candidate":
        assert kept == 3  # every finished candidate is in the journal: only the one in flight is lost
    capsys.readouterr()
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["replayed"] == kept
    assert journal_results(out) == journal_results(searched)
    assert json.loads((out / "best.json").read_text()) == json.loads((searched / "best.json").read_text())


def test_a_search_killed_for_real_loses_only_the_candidate_in_flight(world, tmp_path, capsys):
    whole, out = tmp_path / "whole", tmp_path / "killed"
    assert main(search_argv(world, whole, evals=40)) == 0
    journal = out / "journal.jsonl"
    sigkill_when(search_argv(world, out, evals=40),
                 lambda: journal.is_file() and journal.read_text().count("\n") >= 4, "a third candidate")
    finished = journal.read_text().count("\n") - 1  # whole lines after the header; a cut one is dropped
    assert 3 <= finished < 40
    capsys.readouterr()
    assert main([*search_argv(world, out, evals=40), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["replayed"] == finished
    assert journal_results(out) == journal_results(whole)


# ---- train


def train_run_argv(world: dict, out: Path) -> list[str]:
    return [str(a) for a in train_argv(student=world["student"], data=world["data"], out=out, teacher=world["teacher"],
                                       kd="forward_kl", tokens=24 * 4 * 16, seq_len=16, batch_size=4,
                                       micro_batch_size=2, lr=3e-3, eval_every=6, checkpoint_every=4,
                                       keep_checkpoints=2)]


def half_a_checkpoint(folder: Path, *args, **kwargs) -> None:
    """What a kill leaves while a checkpoint's files are written: some of them, one cut short."""
    torch.save({"step": "half"}, folder / "run_state.pt")
    (folder / "__0_0.distcp").write_bytes(b"\x80\x02half a shard")


TRAIN_KILLS = {
    "between checkpoints": lambda p: die_on_call(p, train_loop, "train_step", 11),
    "mid-write of the third checkpoint": lambda p: die_on_call(p, train_checkpoint, "write_checkpoint_files", 3,
                                                               half_a_checkpoint),
    "exporting the final model": lambda p: die_on_call(p, train_loop, "save_model", 1),
}


def curve(out: Path) -> list[dict]:
    return json_lines_without(out / "metrics.jsonl", "tokens_per_s")


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory) -> Path:
    return uninterrupted(tmp_path_factory, train_run_argv, world, "run")


@pytest.mark.parametrize("point", TRAIN_KILLS)
def test_train_killed_resumes_on_the_same_loss_curve(world, trained, tmp_path, point):
    out = tmp_path / "run"
    argv = train_run_argv(world, out)
    killed_then_rerun(argv, TRAIN_KILLS[point], [*argv, "--resume"])
    assert curve(out) == curve(trained)  # the same bits, not just close
    ours, theirs = (load_file(folder / "final" / "model.safetensors") for folder in (out, trained))
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


# ---- run: one pipeline killed in search, then in training, then in eval; each time the same command again


def pipeline_recipe(world: dict, out: Path) -> Path:
    raw = {"out": str(out), "teacher": str(world["teacher"]),
           "prepare": {"input": [str(world["root"] / "corpus.jsonl")], "val_fraction": 0.1},
           "search": {"budget": "50%", "evals": 6, "population": 3, "tokens": 128, "seq_len": 16},
           "train": {"kd": "forward_kl", "tokens": 768, "seq_len": 16, "batch_size": 4, "micro_batch_size": 4,
                     "eval_every": 4, "eval_tokens": 128, "checkpoint_every": 4}}  # eval: train's windows
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_pipeline_killed_at_each_step_resumes_to_the_uninterrupted_result(world, tmp_path):
    import headstart.eval

    whole, out = tmp_path / "whole", tmp_path / "killed"
    assert main(["run", "--config", str(pipeline_recipe(world, whole))]) == 0
    argv = ["run", "--config", str(pipeline_recipe(world, out))]
    for kill in (lambda p: die_on_call(p, PerplexityObjective, "__call__", 3),
                 lambda p: die_on_call(p, train_checkpoint, "write_checkpoint_files", 2, half_a_checkpoint),
                 # in the student's evaluation, after the teacher's (the eval step's lazy import sees the patch)
                 lambda p: die_on_call(p, headstart.eval, "evaluate_windows", 2)):
        with pytest.MonkeyPatch.context() as patch:
            kill(patch)
            with pytest.raises(Killed):
                main(argv)
    assert main(argv) == 0
    ours, theirs = (json.loads((folder / "eval.json").read_text()) for folder in (out, whole))
    for key in ("teacher", "subnetwork"):
        assert ours[key] == theirs[key]
    assert ours["student"]["perplexity"] == theirs["student"]["perplexity"]
    assert journal_results(out / "search")[1:] == journal_results(whole / "search")[1:]  # headers name the data
    assert curve(out / "train") == curve(whole / "train")
    shutil.rmtree(tmp_path)
