"""Sharded splits: shards of a fixed token count read as one file, resumed shard by shard, format 1 still read."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import word_tokenizer

import headstart.data.prepare as prepare_module
from headstart.data import TokenWindows, data_identity, load_manifest, open_split, prepare_data
from headstart.data.shards import SplitWriter
from headstart.errors import UsageError

SHARD = 37  # tokens: a prime, so windows of 8 keep landing across shard boundaries
SEQ = 8


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """A corpus of about 700 tokens prepared twice: in one shard per split (the default size) and in shards of 37."""
    root = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    lines = [json.dumps({"text": " ".join(f"w{i}" for i in rng.integers(0, 100, rng.integers(3, 20)))})
             for _ in range(60)]
    (root / "c.jsonl").write_text("\n".join(lines) + "\n")
    tok = word_tokenizer(root / "tok", 100)
    paths = {"root": root, "corpus": root / "c.jsonl", "tok": tok}
    for name, size in (("whole", {}), ("sharded", {"shard_tokens": SHARD})):
        prepare_data([str(root / "c.jsonl")], root / name, tokenizer=str(tok), val_fraction=0.1, **size)
        paths[name] = root / name
    return paths


def shard_bytes(folder: Path, split: str) -> list[bytes]:
    return [(folder / name).read_bytes() for name in load_manifest(folder)["splits"][split]["shards"]]


def test_shards_hold_the_one_file_split_cut_into_pieces_of_the_shard_size(made):
    manifest = load_manifest(made["sharded"])
    assert manifest["format"] == 2 and manifest["shard_tokens"] == SHARD
    for split in ("train", "validation"):
        whole, = shard_bytes(made["whole"], split)
        pieces = shard_bytes(made["sharded"], split)
        assert b"".join(pieces) == whole
        assert len(pieces) == -(-manifest["splits"][split]["tokens"] // SHARD)
        assert all(len(p) == 2 * SHARD for p in pieces[:-1]) and 0 < len(pieces[-1]) <= 2 * SHARD
    assert len(shard_bytes(made["sharded"], "train")) > 10
    assert sorted(p.name for p in made["sharded"].iterdir() if p.suffix != ".bin") == ["manifest.json", "tokenizer"]


@pytest.mark.parametrize("seq_len", [SEQ, 50])  # 50 > SHARD: a window then spans three shards
def test_windows_across_shard_boundaries_equal_the_one_file_reading(made, seq_len):
    whole, sharded = (TokenWindows(made[name], "train", seq_len) for name in ("whole", "sharded"))
    assert len(whole) == len(sharded)
    spanning = [i for i in range(len(whole)) if i * seq_len // SHARD != (i * seq_len + seq_len) // SHARD]
    assert spanning  # the comparison below does cross boundaries
    assert torch.equal(sharded.fixed_windows(10**9), whole.fixed_windows(10**9))
    for index in (0, 5, 31):  # shuffled, over several epochs, and a rank's slice
        assert torch.equal(sharded.batch(index, 6, seed=3), whole.batch(index, 6, seed=3))
        assert torch.equal(sharded.batch(index, 6, seed=3, rank=1, world_size=2),
                           whole.batch(index, 6, seed=3, rank=1, world_size=2))


def test_slices_of_a_sharded_split_are_those_of_the_one_file(made):
    one = np.asarray(open_split(load_manifest(made["whole"]), "train"))
    split = open_split(load_manifest(made["sharded"]), "train")
    assert len(split) == len(one) and split.dtype == one.dtype
    for key in (slice(None), slice(-81, None), slice(30, 80), slice(SHARD, 2 * SHARD), slice(5, 5)):
        assert np.array_equal(split[key], one[key]), key


def format_1_copy(folder: Path, out: Path) -> Path:
    """The folder as the previous headstart wrote it: one train.bin / validation.bin, manifest format 1."""
    out.mkdir()
    (out / "tokenizer").symlink_to(folder / "tokenizer")
    manifest = json.loads((folder / "manifest.json").read_text())
    for split, info in manifest["splits"].items():
        (out / f"{split}.bin").write_bytes(b"".join(shard_bytes(folder, split)))
        manifest["splits"][split] = {"file": f"{split}.bin", "tokens": info["tokens"], "documents": info["documents"]}
    del manifest["shard_tokens"]
    (out / "manifest.json").write_text(json.dumps(manifest | {"format": 1}))
    return out


def test_a_format_1_folder_still_loads_with_the_same_windows_and_identity(made, tmp_path):
    old = format_1_copy(made["sharded"], tmp_path / "old")
    for split in ("train", "validation"):
        assert np.array_equal(np.asarray(open_split(load_manifest(old), split)),
                              np.asarray(open_split(load_manifest(made["sharded"]), split)))
    old_windows, new_windows = TokenWindows(old, "train", SEQ), TokenWindows(made["sharded"], "train", SEQ)
    assert torch.equal(old_windows.batch(4, 6, seed=1), new_windows.batch(4, 6, seed=1))
    with open(old / "train.bin", "r+b") as fh:
        fh.truncate(10)
    with pytest.raises(UsageError, match="should hold"):
        open_split(load_manifest(old), "train")
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps(manifest | {"format": 3}))
    with pytest.raises(UsageError, match="has format 3, this headstart reads 1 and 2"):
        load_manifest(old)


def test_data_identity_is_that_of_the_tokens_whatever_the_shard_size_or_format(made, tmp_path):
    identity = data_identity(load_manifest(made["whole"]))
    assert set(identity) == {"tokenizer", "train_tokens", "validation_tokens"}  # what checkpoints stored so far
    assert data_identity(load_manifest(made["sharded"])) == identity
    assert data_identity(load_manifest(format_1_copy(made["sharded"], tmp_path / "old"))) == identity


def test_resume_after_a_kill_in_the_second_shard_gives_the_same_shards(made, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_module, "BATCH_CHARS", 140)  # a few documents a batch, progress after each
    real = SplitWriter.write_document

    def killed_in_the_second_shard(self, ids):
        if self.split == "train" and self.tokens + len(ids) + 1 >= 2 * SHARD:  # before shard 1 is finished
            raise KeyboardInterrupt
        return real(self, ids)

    monkeypatch.setattr(SplitWriter, "write_document", killed_in_the_second_shard)
    settings = {"tokenizer": str(made["tok"]), "val_fraction": 0.1, "shard_tokens": SHARD}
    with pytest.raises(KeyboardInterrupt):
        prepare_data([str(made["corpus"])], tmp_path / "data", **settings)
    work = tmp_path / ".data.partial"
    progress = json.loads((work / "progress.json").read_text())
    assert SHARD < progress["splits"]["train"]["tokens"] < 2 * SHARD  # the last good point lies in shard 1
    assert (work / "train-00001.bin.partial").stat().st_size > 2 * (progress["splits"]["train"]["tokens"] - SHARD)
    first = os.stat(work / "train-00000.bin").st_ino

    monkeypatch.setattr(SplitWriter, "write_document", real)
    prepare_data([str(made["corpus"])], tmp_path / "data", **settings)
    assert os.stat(tmp_path / "data" / "train-00000.bin").st_ino == first  # the finished shard was kept, not redone
    for split in ("train", "validation"):
        assert shard_bytes(tmp_path / "data", split) == shard_bytes(made["sharded"], split)
    assert load_manifest(tmp_path / "data") | {"data_dir": ""} == load_manifest(made["sharded"]) | {"data_dir": ""}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_kill_after_a_shard_was_finished_past_the_last_good_point_resumes_to_the_same_shards(made, tmp_path,
                                                                                                 monkeypatch):
    monkeypatch.setattr(prepare_module, "BATCH_CHARS", 150)  # several documents a batch: progress lags the shards
    real = SplitWriter.write_document

    def killed_once_shard_1_is_finished(self, ids):
        written = real(self, ids)
        if self.split == "train" and self.tokens >= 2 * SHARD:
            raise KeyboardInterrupt
        return written

    monkeypatch.setattr(SplitWriter, "write_document", killed_once_shard_1_is_finished)
    settings = {"tokenizer": str(made["tok"]), "val_fraction": 0.1, "shard_tokens": SHARD}
    with pytest.raises(KeyboardInterrupt):
        prepare_data([str(made["corpus"])], tmp_path / "data", **settings)
    work = tmp_path / ".data.partial"
    assert json.loads((work / "progress.json").read_text())["splits"]["train"]["tokens"] < 2 * SHARD
    assert (work / "train-00001.bin").is_file()  # finished, yet past what the progress record vouches for

    monkeypatch.setattr(SplitWriter, "write_document", real)
    prepare_data([str(made["corpus"])], tmp_path / "data", **settings)
    for split in ("train", "validation"):
        assert shard_bytes(tmp_path / "data", split) == shard_bytes(made["sharded"], split)


def test_a_kill_once_every_document_is_written_resumes_to_the_same_shards(made, tmp_path, monkeypatch):
    real = SplitWriter.close

    def killed_before_the_last_shards_are_finished(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(SplitWriter, "close", killed_before_the_last_shards_are_finished)
    settings = {"tokenizer": str(made["tok"]), "val_fraction": 0.1, "shard_tokens": SHARD}
    with pytest.raises(KeyboardInterrupt):
        prepare_data([str(made["corpus"])], tmp_path / "data", **settings)
    monkeypatch.setattr(SplitWriter, "close", real)
    prepare_data([str(made["corpus"])], tmp_path / "data", **settings)  # nothing left to write: it only finishes
    for split in ("train", "validation"):
        assert shard_bytes(tmp_path / "data", split) == shard_bytes(made["sharded"], split)


def test_a_missing_shard_and_a_bad_shard_size_are_usage_errors(made, tmp_path):
    with pytest.raises(UsageError, match="shard_tokens 0 is not a number of tokens"):
        prepare_data([str(made["corpus"])], tmp_path / "data", tokenizer=str(made["tok"]), shard_tokens=0)
    assert not (tmp_path / "data").exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in made["sharded"].glob("*"):
        (broken / path.name).symlink_to(path)
    (broken / "train-00003.bin").unlink()
    with pytest.raises(UsageError, match=r"train-00003\.bin should hold 74 bytes but is missing"):
        TokenWindows(broken, "train", SEQ)


def test_the_prepare_command_takes_the_shard_size_and_its_default_is_the_librarys(made, tmp_path):
    from headstart.cli.main import main
    from headstart.configs import PrepareConfig

    assert PrepareConfig().shard_tokens == prepare_module.SHARD_TOKENS
    out = tmp_path / "cli"
    assert main(["prepare", "--input", str(made["corpus"]), "--tokenizer", str(made["tok"]), "--val-fraction", "0.1",
                 "--shard-tokens", str(SHARD), "--out", str(out)]) == 0
    for split in ("train", "validation"):
        assert shard_bytes(out, split) == shard_bytes(made["sharded"], split)
    assert "--shard-tokens 37" in load_manifest(out)["created_by"]
