"""Every input a user can get wrong, as a table: the command, exit code 2, one line that names the problem,
and nothing left behind (what was on disk before is there after, byte for byte, and nothing was added).

Also here: the write failures of a full disk (simulated by making the write raise ENOSPC), which keep the
previous checkpoint, shard or journal line and give one line too, and the modes files are written with.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from train_support import make_world, one_thread, train_argv  # noqa: F401 (one_thread: autouse)

from headstart.cli.main import main


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_world(tmp_path_factory.mktemp("bad_inputs"))


def snapshot(*roots: Path) -> dict[str, str]:
    """Every path below the roots, with a hash of each file's bytes."""
    seen = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            seen[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return seen


def folder_of_mine(tmp: Path) -> Path:
    (tmp / "mine").mkdir()
    (tmp / "mine" / "thesis.tex").write_text("years of work")
    return tmp / "mine"


def regular_file(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("do not replace me")
    return tmp / "notes.txt"


def spec_file(tmp: Path, spec: dict | None = None) -> Path:
    (tmp / "spec.json").write_text(json.dumps(spec or {"layers": 2, "mlp": 48}))
    return tmp / "spec.json"


def pickled_model(tmp: Path, world: dict) -> Path:
    folder = tmp / "pickled"
    shutil.copytree(world["teacher"], folder)
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(weights, folder / "pytorch_model.bin")
    return folder


def misshapen_model(tmp: Path, world: dict) -> Path:
    folder = tmp / "misshapen"
    shutil.copytree(world["teacher"], folder)
    weights = load_file(folder / "model.safetensors")
    name = next(k for k in weights if k.endswith("mlp.up_proj.weight"))
    weights[name] = weights[name][:-1].contiguous()
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def extract(world: dict, tmp: Path, out: Path | str, *extra: str, teacher: Path | str | None = None) -> list:
    return ["extract", "--teacher", teacher or world["teacher"], "--spec", spec_file(tmp), "--out", out, *extra]


def init(world: dict, tmp: Path, out: Path | str) -> list:
    (tmp / "arch.json").write_text((world["student"] / "config.json").read_text())
    return ["init", "--architecture", tmp / "arch.json", "--tokenizer", world["root"] / "tokenizer", "--out", out]


def prepare(world: dict, tmp: Path, out: Path | str, *extra: str) -> list:
    return ["prepare", "--tokenizer", world["root"] / "tokenizer", "--input", world["root"] / "corpus.jsonl",
            "--val-fraction", "0.1", "--out", out, *extra]


def search(world: dict, tmp: Path, out: Path | str, *extra: str) -> list:
    return ["search", "--teacher", world["teacher"], "--data", world["data"], "--budget", "50%", "--evals", "2",
            "--tokens", "64", "--seq-len", "16", "--out", out, *extra]


def train(world: dict, tmp: Path, out: Path | str, tokens: str = "256") -> list:
    return train_argv(student=world["student"], data=world["data"], out=out, tokens=tokens, seq_len=16,
                      batch_size=4, micro_batch_size=4)


def importance(world: dict, tmp: Path, out: Path | str) -> list:
    return ["importance", "--teacher", world["teacher"], "--data", world["data"], "--tokens", "64", "--seq-len",
            "16", "--out", out]


UNWRITABLE = "/proc/headstart-out"  # no folder can be made there, also by root

# name -> (the command, given the world and a fresh folder; words the one error line must hold)
CASES: dict[str, tuple[Callable[[dict, Path], list], str]] = {
    # outputs: never replace what a command did not write, never a file, refuse an unwritable --out up front
    "extract over a folder it did not write": (lambda w, t: extract(w, t, folder_of_mine(t)),
                                               "is not a model folder headstart wrote"),
    "extract over a regular file": (lambda w, t: extract(w, t, regular_file(t)), "is a file, not a folder"),
    "extract over a file even with --overwrite": (lambda w, t: extract(w, t, regular_file(t), "--overwrite"),
                                                  "is a file, not a folder"),
    "extract inside a regular file": (lambda w, t: extract(w, t, regular_file(t) / "student"), "which is a file"),
    "extract to an unwritable place": (lambda w, t: extract(w, t, UNWRITABLE), "cannot be written"),
    "init over a folder it did not write": (lambda w, t: init(w, t, folder_of_mine(t)),
                                            "is not a model folder headstart wrote"),
    "init over a regular file": (lambda w, t: init(w, t, regular_file(t)), "is a file, not a folder"),
    "prepare over a folder it did not write": (lambda w, t: prepare(w, t, folder_of_mine(t)),
                                               "is not a headstart data folder"),
    "prepare over a regular file": (lambda w, t: prepare(w, t, regular_file(t)), "is a file, not a folder"),
    "prepare inside a regular file": (lambda w, t: prepare(w, t, regular_file(t) / "data"), "which is a file"),
    "prepare to an unwritable place": (lambda w, t: prepare(w, t, UNWRITABLE), "cannot be written"),
    "search over a folder it did not write": (lambda w, t: search(w, t, folder_of_mine(t)), "is not a search folder"),
    "search over a regular file": (lambda w, t: search(w, t, regular_file(t)), "is a file, not a folder"),
    "search to an unwritable place": (lambda w, t: search(w, t, UNWRITABLE), "cannot be written"),
    "train over a regular file": (lambda w, t: train(w, t, regular_file(t)), "is a file, not a folder"),
    "train inside a regular file": (lambda w, t: train(w, t, regular_file(t) / "run"), "which is a file"),
    "train to an unwritable place": (lambda w, t: train(w, t, UNWRITABLE), "cannot be written"),
    "train over a folder it did not write": (lambda w, t: train(w, t, folder_of_mine(t)),
                                             "is not a training run folder"),
    "importance over a folder it did not write": (lambda w, t: importance(w, t, folder_of_mine(t)),
                                                  "is not a folder of `headstart importance`"),
    "an assets cache inside a regular file": (lambda w, t: ["assets", "--only", "teacher", "--cache",
                                                            regular_file(t) / "cache"], "is a file or lies inside one"),
    # values
    "train --tokens 0": (lambda w, t: train(w, t, t / "run", tokens="0"), "--tokens must be at least 1, got 0"),
    "train --tokens -5": (lambda w, t: train(w, t, t / "run", tokens="-5"), "--tokens must be at least 1, got -5"),
    "search --tokens 0": (lambda w, t: search(w, t, t / "s", "--tokens", "0"), "--tokens must be at least 1, got 0"),
    "search --evals -1": (lambda w, t: search(w, t, t / "s", "--evals", "-1"), "--evals must be at least 1, got -1"),
    # models and specs
    "a pickled model": (lambda w, t: extract(w, t, t / "student", teacher=pickled_model(t, w)),
                        "pytorch_model.bin (a pickle), which headstart does not load — convert it to safetensors"),
    "a model that does not exist": (lambda w, t: extract(w, t, t / "student", teacher="no-such-model"),
                                    "a short name (scale-teacher, smollm2-135m;"),
    "weights of another shape": (lambda w, t: extract(w, t, t / "student", teacher=misshapen_model(t, w)),
                                 "the shape in current model is torch.Size([96, 48])) — re-export"),
    "a spec entry without a layer": (lambda w, t: ["extract", "--teacher", w["teacher"], "--spec",
                                                   spec_file(t, {"layers": [{"heads": 6}]}), "--out", t / "s"],
                                     'a per-layer entry {"heads": 6} has no "layer"'),
    # handled before this table existed, kept true by it
    "a spec the teacher cannot hold": (lambda w, t: ["extract", "--teacher", w["teacher"], "--spec",
                                                     spec_file(t, {"layers": [{"layer": 0, "heads": [0, 4],
                                                                               "kv": [0]}]}), "--out", t / "s"],
                                       "group is not"),
    "a budget no sub-network meets": (lambda w, t: search(w, t, t / "s", "--budget", "10"),
                                      "no fine-layerwise sub-network has"),
    "a corrupt safetensors file": (lambda w, t: extract(w, t, t / "s", teacher=corrupt_model(t, w)),
                                   "is corrupt or truncated"),
    "an empty corpus": (lambda w, t: prepare(w, t, t / "data", "--input", empty_text(t)), "corpus is empty"),
    "data of another tokenizer": (lambda w, t: search(w, t, t / "s", "--data", other_data(t)),
                                  "tokenized with tokenizer"),
}


def corrupt_model(tmp: Path, world: dict) -> Path:
    folder = tmp / "corrupt"
    shutil.copytree(world["teacher"], folder)
    with open(folder / "model.safetensors", "r+b") as fh:
        fh.truncate(1000)
    return folder


def empty_text(tmp: Path) -> Path:
    (tmp / "empty.txt").write_text("  \n")
    return tmp / "empty.txt"


def other_data(tmp: Path) -> Path:
    from train_support import make_data

    return make_data(tmp / "other", n_words=30, n_docs=10, length=20)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_leaves_everything_as_it_was(world, tmp_path, capsys, case):
    build, words = CASES[case]
    argv = [str(a) for a in build(world, tmp_path)]
    capsys.readouterr()
    before = snapshot(tmp_path, world["root"])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"headstart {argv[0]}: error:"), err
    assert words in err, err
    assert "weights_only=False" not in err
    assert snapshot(tmp_path, world["root"]) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_out_without_write_permission_is_refused_up_front(world, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert main([str(a) for a in prepare(world, tmp_path, locked / "data")]) == 2
        assert "cannot be written (Permission denied" in capsys.readouterr().err
    finally:
        locked.chmod(0o755)


def test_overwrite_replaces_a_folder_on_purpose_and_a_rerun_replaces_its_own(world, tmp_path, capsys):
    mine = folder_of_mine(tmp_path)
    assert main([str(a) for a in extract(world, tmp_path, mine, "--overwrite")]) == 0
    assert not (mine / "thesis.tex").exists() and (mine / "config.json").is_file()
    assert main([str(a) for a in extract(world, tmp_path, mine)]) == 0  # its own earlier output: no flag needed
    assert main([str(a) for a in init(world, tmp_path, mine)]) == 0
    assert "headstart remote-code class" not in capsys.readouterr().out


def test_files_are_written_with_the_users_umask(world, tmp_path):
    old = os.umask(0o022)
    try:
        assert main([str(a) for a in extract(world, tmp_path, tmp_path / "student")]) == 0
        assert main([str(a) for a in search(world, tmp_path, tmp_path / "search")]) == 0
        assert main([str(a) for a in prepare(world, tmp_path, tmp_path / "data")]) == 0
        assert main([str(a) for a in train(world, tmp_path, tmp_path / "run")]) == 0
    finally:
        os.umask(old)
    written = [p for name in ("student", "search", "data", "run") for p in (tmp_path / name).rglob("*")]
    assert any(p.suffix == ".pt" for p in written) and any(p.suffix == ".png" for p in written)
    for p in written:
        assert stat.S_IMODE(p.stat().st_mode) == (0o755 if p.is_dir() else 0o644), p


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_checkpointing_keeps_the_last_checkpoint_and_is_one_line(world, tmp_path, capsys,
                                                                                   monkeypatch):
    out = tmp_path / "run"
    argv = [str(a) for a in train(world, tmp_path, out, tokens="512")] + ["--checkpoint-every", "2"]
    real = torch.save

    def save_then_fill_the_disk(obj, path, *args, **kwargs):  # the disk fills once the first checkpoint is in
        done = (out / "checkpoints" / "step-00000002").is_dir()
        return (full_disk if done else real)(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_fill_the_disk)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "step-00000004: the disk is full" in err and "run the same command" in err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002"]  # intact, no temp folder
    monkeypatch.setattr(torch, "save", real)
    assert main([*argv, "--resume"]) == 0
    assert json.loads((out / "summary.json").read_text())["resumed_at"] == 2


def test_a_full_disk_while_journaling_keeps_the_lines_before_and_is_one_line(world, tmp_path, capsys, monkeypatch):
    out = tmp_path / "search"
    argv = [str(a) for a in search(world, tmp_path, out, "--evals", "4", "--population", "2")]
    assert main(argv) == 0
    capsys.readouterr()
    whole = (out / "journal.jsonl").read_text()
    shutil.rmtree(out)
    real_write, writes = os.fsync, []

    def fsync_then_fill(fd):  # the third candidate's line is written, then its sync finds the disk full
        writes.append(fd)
        return full_disk() if len(writes) == 4 else real_write(fd)

    monkeypatch.setattr(os, "fsync", fsync_then_fill)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "journal.jsonl: the disk is full" in err
    lines = (out / "journal.jsonl").read_text().splitlines()
    assert len(lines) == 3 and whole.splitlines()[1:3] != [] and [json.loads(x)["key"] for x in lines[1:]] == [
        json.loads(x)["key"] for x in whole.splitlines()[1:3]]
    monkeypatch.setattr(os, "fsync", real_write)
    assert main(argv) == 0
    strip = [{k: v for k, v in json.loads(x).items() if k not in ("seconds", "at")} for x in whole.splitlines()]
    again = (out / "journal.jsonl").read_text().splitlines()
    assert [{k: v for k, v in json.loads(x).items() if k not in ("seconds", "at")} for x in again] == strip


def test_a_full_disk_while_writing_shards_keeps_the_work_and_is_one_line(world, tmp_path, capsys, monkeypatch):
    from headstart.data import prepare as prepare_module
    from headstart.data.shards import SplitWriter

    monkeypatch.setattr(prepare_module, "BATCH_CHARS", 2000)  # many batches, progress saved after each
    real, calls = SplitWriter.write_document, []

    def write_then_fill(self, ids):
        calls.append(1)
        return full_disk() if len(calls) == 25 else real(self, ids)

    monkeypatch.setattr(SplitWriter, "write_document", write_then_fill)
    argv = [str(a) for a in prepare(world, tmp_path, tmp_path / "data")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the disk is full" in err
    assert json.loads((tmp_path / ".data.partial" / "progress.json").read_text())["documents"] > 0
    monkeypatch.setattr(SplitWriter, "write_document", real)
    assert main(argv) == 0
    for name in ("train-00000.bin", "validation-00000.bin"):
        assert (tmp_path / "data" / name).read_bytes() == (world["data"] / name).read_bytes()


def test_a_uniform_student_in_remote_code_is_not_called_layer_wise(world, tmp_path, capsys):
    spec = spec_file(tmp_path, {"embd": 16, "layers": 2})  # GPT-NeoX: 4 heads x 8 is not an embedding of 16
    assert main(["extract", "--teacher", str(world["student"]), "--spec", str(spec), "--out", str(tmp_path / "s")]) == 0
    line = capsys.readouterr().out
    assert "headstart remote-code class (a shape gpt_neox's class cannot hold)" in line and "layer-wise" not in line


def test_a_full_disk_that_torch_reports_as_a_runtime_error_is_one_line_too(world, tmp_path, capsys, monkeypatch):
    from headstart import atomic

    def torch_on_a_full_disk(obj, path, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    class FullDisk:
        f_bavail, f_frsize = 3, 4096

    monkeypatch.setattr(torch, "save", torch_on_a_full_disk)
    monkeypatch.setattr(atomic.os, "statvfs", lambda path: FullDisk)
    assert main([str(a) for a in train(world, tmp_path, tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "step-00000004: the disk is full" in err
    assert not any((tmp_path / "run" / "checkpoints").iterdir())  # no temp file left
