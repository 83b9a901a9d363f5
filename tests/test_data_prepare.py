"""`headstart prepare`: input types, whole-document split, dtype choice, manifest, bad input."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import word_tokenizer

import headstart.data.prepare as prepare_module
from headstart.cli.main import main
from headstart.data import check_tokenizer_matches, load_manifest, load_tokenizer, open_split, tokenizer_fingerprint
from headstart.data.prepare import prepare_data
from headstart.data.shards import SplitWriter
from headstart.errors import UsageError

EOS = 0



def doc_text(k: int, length: int) -> str:
    """Document k is the word wk repeated: every token tells which document it came from."""
    return " ".join([f"w{k}"] * length)


@pytest.fixture
def tok_dir(tmp_path) -> Path:
    return word_tokenizer(tmp_path / "tok", 200)


@pytest.fixture
def corpus(tmp_path) -> dict[str, Path]:
    """Documents 0-1 as .txt, 2-41 in a jsonl, 42-71 in a parquet file; lengths vary."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text(doc_text(0, 50) + "\n\n" + doc_text(0, 7))  # one file = one document
    (folder / "b.txt").write_text(doc_text(1, 30))
    lines = [json.dumps({"text": doc_text(k, 3 + k % 11), "n": k}) for k in range(2, 42)]
    (folder / "c.jsonl").write_text("\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:]) + "\n")
    pq.write_table(pa.table({"text": [doc_text(k, 2 + k % 5) for k in range(42, 72)]}), folder / "d.parquet")
    return {p.stem: p for p in folder.iterdir()}


def split_documents(data_dir: Path, split: str) -> list[np.ndarray]:
    """The documents of a split file, without the eos that ends each one."""
    tokens = np.asarray(open_split(load_manifest(data_dir), split))
    assert tokens[-1] == EOS
    ends = np.flatnonzero(tokens == EOS)
    return [tokens[start:end] for start, end in zip(np.r_[0, ends[:-1] + 1], ends, strict=True)]


def run_cli(*argv: str) -> int:
    return main(["prepare", *map(str, argv)])


def test_each_input_type_gives_its_documents(tmp_path, tok_dir, corpus):
    out = tmp_path / "data"
    assert run_cli("--tokenizer", tok_dir, "--input", *corpus.values(), "--out", out) == 0
    manifest = load_manifest(out)
    docs = {s["name"]: s["documents"] for s in manifest["sources"]}
    assert docs == {"a.txt": 1, "b.txt": 1, "c.jsonl": 40, "d.parquet": 30}
    train, val = split_documents(out, "train"), split_documents(out, "validation")
    lengths = {int(d[0]) - 2: len(d) for d in train + val}
    assert lengths[0] == 57 and lengths[1] == 30
    assert all(lengths[k] == 3 + k % 11 for k in range(2, 42))
    assert all(lengths[k] == 2 + k % 5 for k in range(42, 72))


def test_split_is_by_whole_documents_and_covers_the_corpus(tmp_path, tok_dir, corpus):
    out = tmp_path / "data"
    prepare_data([str(p) for p in corpus.values()], out, tokenizer=str(tok_dir), val_fraction=0.2)
    seen = []
    for split in ("train", "validation"):
        for doc in split_documents(out, split):
            assert (doc == doc[0]).all()  # one document between two eos: never cut, never merged
            seen.append(int(doc[0]) - 2)
    assert sorted(seen) == list(range(72))  # every document once, in exactly one split
    manifest = load_manifest(out)
    val_tokens, total = manifest["splits"]["validation"]["tokens"], sum(s["tokens"] for s in manifest["sources"])
    assert 0.2 <= val_tokens / total < 0.35


def test_manifest_records_tokenizer_counts_and_sources(tmp_path, tok_dir, corpus):
    out = tmp_path / "data"
    assert run_cli("--tokenizer", tok_dir, "--input", corpus["c"], corpus["d"], "--out", out, "--seed", 3) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    tok = load_tokenizer(tok_dir)
    assert manifest["format"] == 2 and manifest["shard_tokens"] == 2**28 and manifest["dtype"] == "uint16"
    assert manifest["tokenizer"] == {
        "name": str(tok_dir),
        "fingerprint": tokenizer_fingerprint(tok),
        "vocab_size": 202,
        "eos_id": EOS,
    }
    assert tokenizer_fingerprint(load_tokenizer(out / "tokenizer")) == manifest["tokenizer"]["fingerprint"]
    assert manifest["created_by"].startswith("headstart prepare --input") and f"--tokenizer {tok_dir}" in \
        manifest["created_by"]
    for split in ("train", "validation"):
        info = manifest["splits"][split]
        assert (out / info["shards"][0]).stat().st_size == 2 * info["tokens"]
        assert info["tokens"] == sum(s["splits"][split]["tokens"] for s in manifest["sources"])
        assert info["documents"] == sum(s["splits"][split]["documents"] for s in manifest["sources"])
        assert info["documents"] == len(split_documents(out, split))
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "prepare_config.json", "tokenizer",
                                                     "train-00000.bin", "validation-00000.bin"]


def test_vocabulary_over_65536_is_stored_as_uint32(tmp_path):
    tok_dir = word_tokenizer(tmp_path / "big", 70_000)
    (tmp_path / "x.jsonl").write_text("\n".join(json.dumps({"text": f"w69990 w{k} w5"}) for k in range(20)))
    out = tmp_path / "data"
    prepare_data([str(tmp_path / "x.jsonl")], out, tokenizer=str(tok_dir))
    manifest = load_manifest(out)
    assert manifest["dtype"] == "uint32"
    tokens = np.asarray(open_split(manifest, "train"))
    assert tokens.dtype == np.uint32 and tokens[0] == 69_992
    assert (out / "train-00000.bin").stat().st_size == 4 * manifest["splits"]["train"]["tokens"]


def test_val_docs_send_named_files_whole_to_validation(tmp_path, tok_dir, corpus):
    out = tmp_path / "data"
    prepare_data([str(p) for p in corpus.values()], out, tokenizer=str(tok_dir), val_docs=["*b.txt"])
    sources = {s["name"]: s["splits"] for s in load_manifest(out)["sources"]}
    assert sources["b.txt"]["train"]["documents"] == 0 and sources["b.txt"]["validation"]["documents"] == 1
    assert load_manifest(out)["splits"]["validation"]["documents"] == 1  # no default fraction on top

    prepare_data([str(p) for p in corpus.values()], out, tokenizer=str(tok_dir), val_docs=["b.txt"], val_fraction=0.3)
    assert load_manifest(out)["splits"]["validation"]["documents"] > 1  # an explicit fraction adds to them


def test_split_is_deterministic_and_follows_the_seed(tmp_path, tok_dir, corpus):
    inputs = [str(p) for p in corpus.values()]
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        prepare_data(inputs, tmp_path / name, tokenizer=str(tok_dir), seed=seed)
    read = lambda name: (tmp_path / name / "validation-00000.bin").read_bytes()  # noqa: E731
    assert read("a") == read("b") and read("a") != read("c")


def test_split_does_not_depend_on_where_the_corpus_sits(tmp_path, tok_dir, corpus):
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(tmp_path / "corpus", moved)
    prepare_data([str(tmp_path / "corpus")], tmp_path / "a", tokenizer=str(tok_dir), val_fraction=0.2)
    prepare_data([str(moved)], tmp_path / "b", tokenizer=str(tok_dir), val_fraction=0.2)
    read = lambda name: (tmp_path / name / "validation-00000.bin").read_bytes()  # noqa: E731
    assert read("a") == read("b")


def test_a_crash_while_writing_leaves_no_output(tmp_path, tok_dir, corpus, monkeypatch):
    def crash(self, ids):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(SplitWriter, "write_document", crash)
    with pytest.raises(RuntimeError):
        prepare_data([str(corpus["c"])], tmp_path / "data", tokenizer=str(tok_dir))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".data.partial", "corpus", "tok"]  # no data/


@pytest.mark.parametrize("bpe", [False, True])
def test_a_run_killed_part_way_is_resumed_to_the_same_bytes(tmp_path, tok_dir, corpus, monkeypatch, bpe):
    inputs = [str(p) for p in corpus.values()]
    settings = {"train_vocab_size": 300} if bpe else {"tokenizer": str(tok_dir)}
    prepare_data(inputs, tmp_path / "whole", **settings)
    monkeypatch.setattr(prepare_module, "BATCH_CHARS", 200)  # many batches, a checkpoint after each
    real, calls = SplitWriter.write_document, []

    def crash_on_the_40th(self, ids):
        calls.append(1)
        if len(calls) == 40:
            raise KeyboardInterrupt  # killed mid-batch: the files hold more than the last checkpoint
        return real(self, ids)

    monkeypatch.setattr(SplitWriter, "write_document", crash_on_the_40th)
    with pytest.raises(KeyboardInterrupt):
        prepare_data(inputs, tmp_path / "data", **settings)
    progress = json.loads((tmp_path / ".data.partial" / "progress.json").read_text())
    assert 0 < progress["documents"] < 39

    trained = []
    monkeypatch.setattr(prepare_module, "train_bpe", lambda *a, **k: trained.append(1))
    prepare_data(inputs, tmp_path / "data", **settings)
    assert not trained  # the tokenizer the killed run trained is kept
    assert not (tmp_path / ".data.partial").exists()
    for name in ("train-00000.bin", "validation-00000.bin"):
        assert (tmp_path / "data" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert load_manifest(tmp_path / "data")["sources"] == load_manifest(tmp_path / "whole")["sources"]


def test_work_left_by_a_different_run_is_thrown_away(tmp_path, corpus, monkeypatch):
    def crash(self, ids):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(SplitWriter, "write_document", crash)
        with pytest.raises(KeyboardInterrupt):  # killed after training its tokenizer
            prepare_data([str(corpus["c"])], tmp_path / "data", train_vocab_size=300)
    real, trained = prepare_module.train_bpe, []
    monkeypatch.setattr(prepare_module, "train_bpe", lambda *a, **k: trained.append(1) or real(*a, **k))
    prepare_data([str(corpus["c"]), str(corpus["b"])], tmp_path / "data", train_vocab_size=300)
    assert trained == [1]  # other inputs: the killed run's tokenizer is not theirs
    assert [s["name"] for s in load_manifest(tmp_path / "data")["sources"]] == ["c.jsonl", "b.txt"]


def test_folder_input_reads_every_supported_file_once(tmp_path, tok_dir, corpus):
    (tmp_path / "corpus" / "notes.csv").write_text("not an input")
    out = tmp_path / "data"
    prepare_data([str(tmp_path / "corpus"), str(corpus["a"])], out, tokenizer=str(tok_dir))
    assert [s["name"] for s in load_manifest(out)["sources"]] == ["a.txt", "b.txt", "c.jsonl", "d.parquet"]


def test_text_field_names_the_jsonl_field_and_parquet_column(tmp_path, tok_dir):
    (tmp_path / "x.jsonl").write_text("\n".join(json.dumps({"body": doc_text(k, 4)}) for k in range(5)))
    pq.write_table(pa.table({"body": [doc_text(k, 4) for k in range(5, 9)]}), tmp_path / "y.parquet")
    out = tmp_path / "data"
    inputs = [str(tmp_path / "x.jsonl"), str(tmp_path / "y.parquet")]
    manifest = prepare_data(inputs, out, tokenizer=str(tok_dir), text_field="body")
    assert sum(s["documents"] for s in manifest["sources"]) == 9


def test_train_tokenizer_learns_from_the_train_split_only(tmp_path):
    train_text = " ".join(["the quick brown fox jumps over the lazy dog"] * 200)
    (tmp_path / "train.txt").write_text(train_text)
    (tmp_path / "other.txt").write_text(train_text.replace("fox", "cat"))
    (tmp_path / "held.txt").write_text(" ".join(["qqqjjjkkk"] * 500))
    out = tmp_path / "data"
    inputs = [str(tmp_path / n) for n in ("train.txt", "other.txt", "held.txt")]
    assert run_cli("--train-tokenizer", 300, "--input", *inputs, "--val-docs", "held.txt", "--out", out) == 0
    manifest = load_manifest(out)
    tok = load_tokenizer(out / "tokenizer")
    assert manifest["tokenizer"]["fingerprint"] == tokenizer_fingerprint(tok)
    assert manifest["tokenizer"]["eos_id"] == tok.convert_tokens_to_ids("<|endoftext|>")
    assert tok.convert_tokens_to_ids("Ġquick") != tok.unk_token_id  # learnt from train text
    assert not any("qqq" in t or "jjj" in t for t in tok.get_vocab())  # never saw the held-out text


def test_a_tokenizer_the_corpus_cannot_fill_is_named_by_its_real_size_and_warned_of(tmp_path, capsys):
    (tmp_path / "a.txt").write_text(" ".join(["the quick brown fox jumps over the lazy dog"] * 200))
    (tmp_path / "b.txt").write_text(" ".join(["the lazy cat"] * 200))
    assert run_cli("--train-tokenizer", "5k", "--input", tmp_path / "a.txt", tmp_path / "b.txt", "--val-docs",
                   "b.txt", "--out", tmp_path / "data") == 0
    tokenizer = load_manifest(tmp_path / "data")["tokenizer"]
    size = tokenizer["vocab_size"]
    assert 258 <= size < 5000 and tokenizer["name"] == f"byte-level BPE of {size} tokens trained on this corpus"
    err = capsys.readouterr().err
    assert f"the tokenizer has {size} tokens, not 5,000: the train split holds no more merges" in err, err


def test_check_tokenizer_matches(tmp_path, tok_dir, corpus):
    out = tmp_path / "data"
    prepare_data([str(corpus["c"])], out, tokenizer=str(tok_dir))
    manifest = load_manifest(out)
    check_tokenizer_matches(manifest, load_tokenizer(tok_dir))
    check_tokenizer_matches(manifest, manifest["tokenizer"]["fingerprint"])
    other = load_tokenizer(word_tokenizer(tmp_path / "other", 10))
    with pytest.raises(UsageError, match=r"data in .* was tokenized with tokenizer .* but the model uses") as err:
        check_tokenizer_matches(manifest, other)
    assert "headstart prepare --tokenizer" in err.value.fix


def test_rerun_replaces_an_earlier_data_folder(tmp_path, tok_dir, corpus):
    out = tmp_path / "data"
    prepare_data([str(corpus["c"])], out, tokenizer=str(tok_dir))
    prepare_data([str(corpus["d"])], out, tokenizer=str(tok_dir))
    assert [s["name"] for s in load_manifest(out)["sources"]] == ["d.parquet"]


def test_reading_a_damaged_data_folder_is_a_usage_error(tmp_path, tok_dir, corpus):
    out = tmp_path / "data"
    with pytest.raises(UsageError, match=r"no manifest\.json"):
        load_manifest(out)
    prepare_data([str(corpus["c"])], out, tokenizer=str(tok_dir))
    with open(out / "train-00000.bin", "r+b") as fh:
        fh.truncate(10)
    with pytest.raises(UsageError, match="should hold"):
        open_split(load_manifest(out), "train")
    (out / "manifest.json").write_text("{")
    with pytest.raises(UsageError, match="corrupt"):
        load_manifest(out)


def bad_inputs(tmp_path: Path, tok_dir: Path) -> dict[str, tuple[list, str]]:
    """Name -> (extra CLI args, expected words in the error); files are made on demand."""

    def write(name: str, text: str) -> Path:
        (tmp_path / name).write_text(text)
        return tmp_path / name

    ok = write("ok.jsonl", "\n".join(json.dumps({"text": doc_text(k, 5)}) for k in range(10)))
    not_tok = tmp_path / "not_tok"
    not_tok.mkdir()
    (not_tok / "config.json").write_text("{}")
    bytes_file = tmp_path / "latin1.txt"
    bytes_file.write_bytes("caf\xe9".encode("latin-1"))
    pq.write_table(pa.table({"body": ["w1 w2"]}), tmp_path / "nocol.parquet")
    tok = ["--tokenizer", tok_dir]
    return {
        "empty corpus": ([*tok, "--input", write("e.txt", "  \n"), write("e.jsonl", "\n")], "corpus is empty"),
        "missing input": ([*tok, "--input", tmp_path / "nope.txt"], "does not exist"),
        "unknown type": ([*tok, "--input", write("x.csv", "a,b")], "unknown file type"),
        "not a tokenizer": (["--tokenizer", not_tok, "--input", ok], "not a tokenizer folder"),
        "unknown tokenizer name": (["--tokenizer", "no-such-tok", "--input", ok], "neither an existing folder"),
        "no eos": (["--tokenizer", word_tokenizer(tmp_path / "noeos", 5, eos=False), "--input", ok], "eos"),
        "no tokenizer": (["--input", ok], "exactly one of"),
        "missing field": ([*tok, "--input", write("f.jsonl", '{"body": "w1"}\n')], "no field 'text'"),
        "bad json": ([*tok, "--input", write("j.jsonl", '{"text": "w1"}\n{oops\n')], "j.jsonl:2 is not valid JSON"),
        "non-text field": ([*tok, "--input", write("n.jsonl", '{"text": 3}\n')], "not text"),
        "missing column": ([*tok, "--input", tmp_path / "nocol.parquet"], "no column 'text'"),
        "not utf-8": ([*tok, "--input", bytes_file], "not UTF-8"),
        "one document": ([*tok, "--input", write("one.txt", "w1 w2")], "validation split would be empty"),
        "val-docs match nothing": ([*tok, "--input", ok, "--val-docs", "zzz*"], "matches no input"),
        "val-docs take all": ([*tok, "--input", ok, "--val-docs", "ok.*"], "train split would be empty"),
        "bad fraction": ([*tok, "--input", ok, "--val-fraction", "1.5"], "outside [0, 1)"),
        "tiny bpe": (["--train-tokenizer", "10", "--input", ok], "too small"),
    }


BAD_INPUT_CASES = [
    "empty corpus", "missing input", "unknown type", "not a tokenizer", "unknown tokenizer name", "no eos",
    "no tokenizer", "missing field", "bad json", "non-text field", "missing column", "not utf-8", "one document",
    "val-docs match nothing", "val-docs take all", "bad fraction", "tiny bpe",
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUT_CASES)
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, tok_dir, capsys, case):
    args, expected = bad_inputs(tmp_path, tok_dir)[case]
    out = tmp_path / "out"
    assert run_cli(*args, "--out", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("headstart prepare: error:") and expected in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temp folder left either


@pytest.mark.skipif(importlib.util.find_spec("datasets") is not None, reason="`datasets` is installed here")
def test_hf_dataset_without_datasets_package_is_a_usage_error(tmp_path, tok_dir, capsys):
    assert run_cli("--tokenizer", tok_dir, "--input", "hf:some/dataset", "--out", tmp_path / "out") == 2
    assert "`datasets` package is not installed" in capsys.readouterr().err


def test_corpus_prefix_names_a_source_of_the_offline_corpus(tmp_path, tok_dir, capsys, monkeypatch):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "data"
    assert run_cli("--tokenizer", tok_dir, "--input", "corpus:austen", "--out", out) == 2
    assert "asset corpus/austen is not fetched" in capsys.readouterr().err and not out.exists()
    assert run_cli("--tokenizer", tok_dir, "--input", "corpus:dickens", "--out", out) == 2
    assert "unknown corpus source 'dickens'" in capsys.readouterr().err

    folder = tmp_path / "cache" / "corpus" / "austen"
    folder.mkdir(parents=True)
    for k, name in enumerate(["emma.txt", "persuasion.txt", "sense.txt"]):
        (folder / name).write_text(doc_text(k, 20))
    (folder / "asset.json").write_text("{}")  # the marker of a finished asset
    assert run_cli("--tokenizer", tok_dir, "--input", "corpus:austen", "--val-docs", "persuasion.txt",
                   "--out", out) == 0
    sources = {s["name"]: s["splits"]["validation"]["documents"] for s in load_manifest(out)["sources"]}
    assert sources == {"emma.txt": 0, "persuasion.txt": 1, "sense.txt": 0}


def test_out_folder_that_is_not_a_data_folder_is_left_alone(tmp_path, tok_dir, corpus, capsys):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert run_cli("--tokenizer", tok_dir, "--input", corpus["c"], "--out", precious) == 2
    assert "not a headstart data folder" in capsys.readouterr().err
    assert (precious / "thesis.tex").read_text() == "years of work"
