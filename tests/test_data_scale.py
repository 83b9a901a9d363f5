"""Data at scale: Hugging Face datasets streamed row by row, a token budget that stops reading, parallel workers."""

import importlib.machinery
import json
import sys
import types

import numpy as np
import pytest
from conftest import word_tokenizer

import headstart.data.prepare as prepare_module
from headstart.cli.main import main
from headstart.data import load_manifest, open_split

ROWS = [{"text": " ".join([f"w{k}"] * (3 + k % 7)), "id": k} for k in range(60)]


class Stream:
    """What datasets.load_dataset(..., streaming=True) returns: rows to iterate, no column to index."""

    def __init__(self, rows, fail_at=None):
        self.rows, self.fail_at = rows, fail_at

    def __iter__(self):
        for i, row in enumerate(self.rows):
            if i == self.fail_at:
                raise ConnectionError("the hub went away")
            yield row


@pytest.fixture
def fake_datasets(monkeypatch):
    """A `datasets` module whose load_dataset streams ROWS and records how it was called."""
    module = types.ModuleType("datasets")
    module.__spec__ = importlib.machinery.ModuleSpec("datasets", None)
    module.calls = []
    module.fail_at = None

    def load_dataset(name, config=None, split=None, streaming=False):
        module.calls.append((name, config, split, streaming))
        if name == "missing/dataset":
            raise FileNotFoundError(f"Dataset {name} doesn't exist on the Hub")
        return Stream(ROWS, module.fail_at)

    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", module)
    return module


@pytest.fixture
def tok_dir(tmp_path):
    return word_tokenizer(tmp_path / "tok", 100)


def prepare(*argv) -> int:
    return main(["prepare", *map(str, argv)])


def all_tokens(out) -> int:
    return sum(s["tokens"] for s in load_manifest(out)["splits"].values())


def test_a_hub_dataset_is_streamed_and_gives_the_tokens_of_the_same_rows_as_a_local_file(tmp_path, tok_dir,
                                                                                      fake_datasets):
    assert prepare("--tokenizer", tok_dir, "--input", "hf:org/corpus:sample-10BT", "--out", tmp_path / "hub") == 0
    assert set(fake_datasets.calls) == {("org/corpus", "sample-10BT", "train", True)}  # streamed, every pass
    local = tmp_path / "org_corpus.jsonl"
    local.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert prepare("--tokenizer", tok_dir, "--input", local, "--out", tmp_path / "local") == 0
    hub, files = load_manifest(tmp_path / "hub"), load_manifest(tmp_path / "local")
    assert hub["sources"][0]["name"] == "org/corpus:sample-10BT" and hub["sources"][0]["documents"] == len(ROWS)
    assert all_tokens(tmp_path / "hub") == all_tokens(tmp_path / "local")
    assert sum(s["documents"] for s in hub["splits"].values()) == sum(s["documents"] for s in files["splits"].values())


@pytest.mark.parametrize(("spec", "expected"), [("hf:missing/dataset", "could not open Hugging Face dataset"),
                                                ("hf:org/corpus", "stopped at row 30")])
def test_a_hub_dataset_that_cannot_be_read_is_one_line_and_no_output(tmp_path, tok_dir, fake_datasets, capsys, spec,
                                                                     expected):
    fake_datasets.fail_at = 30
    assert prepare("--tokenizer", tok_dir, "--input", spec, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and not (tmp_path / "out").exists()


def test_a_hub_dataset_without_the_text_column_names_the_columns(tmp_path, tok_dir, fake_datasets, capsys):
    assert prepare("--tokenizer", tok_dir, "--input", "hf:org/corpus", "--text-field", "body", "--out",
                   tmp_path / "out") == 2
    assert "has no column 'body' (columns: text, id)" in capsys.readouterr().err


def test_max_tokens_keeps_the_first_documents_that_hold_that_many_tokens(tmp_path, tok_dir):
    corpus = tmp_path / "c.jsonl"  # 10-word documents: 11 tokens each with their eos
    corpus.write_text("".join(json.dumps({"text": " ".join([f"w{k}"] * 10)}) + "\n" for k in range(40)))
    out = tmp_path / "out"
    assert prepare("--tokenizer", tok_dir, "--input", corpus, "--out", out, "--max-tokens", "50",
                   "--val-fraction", "0.2") == 0
    manifest = load_manifest(out)
    assert all_tokens(out) == 55 and manifest["sources"][0]["documents"] == 5  # the 5th document crosses 50
    assert manifest["max_tokens"] == 50 and "--max-tokens 50" in manifest["created_by"]
    kept = np.concatenate([np.asarray(open_split(manifest, s)) for s in ("train", "validation")])
    assert sorted({int(t) for t in kept} - {0}) == sorted(int(t) for t in tok_ids(tok_dir, [f"w{k}" for k in range(5)]))


def tok_ids(tok_dir, words):
    from headstart.data import load_tokenizer

    return load_tokenizer(tok_dir).convert_tokens_to_ids(words)


def test_max_tokens_reads_no_further_than_it_needs(tmp_path, tok_dir, fake_datasets, monkeypatch):
    monkeypatch.setattr(prepare_module, "BATCH_CHARS", 16)  # reading runs one batch (4 MB) ahead of the count
    fake_datasets.fail_at = 30  # rows 0-5 hold the budget: the stream is never read as far as its failure
    assert prepare("--tokenizer", tok_dir, "--input", "hf:org/corpus", "--out", tmp_path / "out",
                   "--max-tokens", "40") == 0
    assert load_manifest(tmp_path / "out")["sources"][0]["documents"] < 30


def test_max_tokens_needs_a_given_tokenizer(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("some text")
    assert prepare("--train-tokenizer", "300", "--input", corpus, "--out", tmp_path / "out", "--max-tokens", "9") == 2
    assert "--max-tokens 9 needs --tokenizer" in capsys.readouterr().err


@pytest.mark.slow
def test_worker_processes_write_the_same_bytes_as_one_process(tmp_path, tok_dir, monkeypatch):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    monkeypatch.setattr(prepare_module, "BATCH_CHARS", 64)  # many batches in flight at once
    for n in ("1", "2"):
        assert prepare("--tokenizer", tok_dir, "--input", corpus, "--out", tmp_path / n, "--workers", n) == 0
    for name in ("train-00000.bin", "validation-00000.bin"):
        assert (tmp_path / "2" / name).read_bytes() == (tmp_path / "1" / name).read_bytes()
    assert "--workers 2" not in load_manifest(tmp_path / "2")["created_by"]  # not part of what the data is


def test_under_max_tokens_the_text_is_encoded_once_and_the_bytes_are_those_of_the_prefix_alone(tmp_path, tok_dir,
                                                                                                monkeypatch):
    import headstart.data.encode as encode_module

    docs = [json.dumps({"text": " ".join([f"w{k}"] * (4 + k % 5))}) + "\n" for k in range(40)]
    (tmp_path / "long").mkdir()
    (tmp_path / "long" / "c.jsonl").write_text("".join(docs))
    monkeypatch.setattr(prepare_module, "BATCH_CHARS", 16)
    real, encoded = encode_module.encode_texts, []
    monkeypatch.setattr(encode_module, "encode_texts", lambda b, texts, d: encoded.extend(texts) or real(b, texts, d))
    assert prepare("--tokenizer", tok_dir, "--input", tmp_path / "long" / "c.jsonl", "--out", tmp_path / "cut",
                   "--max-tokens", "60", "--val-fraction", "0.3") == 0
    kept = load_manifest(tmp_path / "cut")["sources"][0]["documents"]
    assert kept <= len(encoded) <= kept + 3  # each kept document once (and what one batch reads ahead)
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / "c.jsonl").write_text("".join(docs[:kept]))  # the same name: the same split
    assert prepare("--tokenizer", tok_dir, "--input", tmp_path / "short" / "c.jsonl", "--out", tmp_path / "whole",
                   "--val-fraction", "0.3") == 0
    for name in ("train-00000.bin", "validation-00000.bin"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert not list(tmp_path.glob(".*"))  # the measuring pass's tokens are gone
