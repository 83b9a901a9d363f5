"""Which files of a folder `prepare` reads, and how: extensions in any case, --glob, hidden folders, .gz,
byte-order marks, and files that do not decode (skipped and counted in folders, an error when named)."""

from __future__ import annotations

import gzip
import json

import pytest
from conftest import word_tokenizer

from headstart.cli.main import main
from headstart.data import load_manifest
from headstart.data.documents import read_documents, resolve_sources
from headstart.errors import UsageError


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "corpus"
    (root / "docs").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.TXT").write_text("w1 w2")
    (root / "docs" / "b.md").write_text("w3")
    (root / "docs" / "c.rst").write_text("w4")
    (root / "d.txt.gz").write_bytes(gzip.compress(b"w5 w6"))
    (root / "e.jsonl.gz").write_bytes(gzip.compress((json.dumps({"text": "w7"}) + "\n").encode()))
    (root / "bom.txt").write_bytes("\ufeffw8".encode())
    (root / "latin.txt").write_bytes("caf\xe9 w9".encode("latin-1"))
    (root / "notes.tex").write_text("w10")
    (root / ".git" / "HEAD.txt").write_text("ref: refs/heads/main")
    (root / ".hidden.txt").write_text("secret")
    return root


def test_a_folder_gives_its_text_files_by_the_documented_rule(folder, capsys):
    sources = resolve_sources([folder])
    assert [s.name for s in sources] == ["a.TXT", "bom.txt", "d.txt.gz", "docs/b.md", "docs/c.rst", "e.jsonl.gz"]
    texts = {s.name: list(read_documents(s)) for s in sources}
    assert texts["bom.txt"] == ["w8"] and texts["d.txt.gz"] == ["w5 w6"] and texts["e.jsonl.gz"] == ["w7"]
    err = capsys.readouterr().err.strip()
    assert "skipped 1 of the files found in folders, not UTF-8 text" in err and "latin.txt" in err
    assert "\n" not in err


def test_glob_chooses_the_files_and_encoding_reads_the_others(folder, capsys):
    assert [s.name for s in resolve_sources([folder], globs=["*.TEX", "docs/*"])] == [
        "docs/b.md", "docs/c.rst", "notes.tex"]
    latin = [s for s in resolve_sources([folder], encoding="latin-1") if s.name == "latin.txt"]
    assert list(read_documents(latin[0])) == ["caf\xe9 w9"]


def test_a_named_file_that_does_not_decode_is_refused_before_any_work(folder):
    with pytest.raises(UsageError, match=r"latin\.txt is not UTF-8 text .* --encoding"):
        resolve_sources([folder / "latin.txt"])
    with pytest.raises(UsageError, match="not a known text encoding"):
        resolve_sources([folder], encoding="klingon")


def test_prepare_records_glob_and_encoding_in_its_command(folder, tmp_path):
    tok = word_tokenizer(tmp_path / "tok", 12)
    out = tmp_path / "data"
    assert main(["prepare", "--tokenizer", str(tok), "--input", str(folder), "--encoding", "latin-1",
                 "--glob", "*.txt", "--val-fraction", "0.3", "--out", str(out)]) == 0
    manifest = load_manifest(out)
    assert [s["name"] for s in manifest["sources"]] == ["a.TXT", "bom.txt", "latin.txt"]  # globs ignore case
    assert "--glob '*.txt' --encoding latin-1" in manifest["created_by"]
