"""Token shards on disk: one raw token file per split, described by manifest.json.

A split file is the concatenation of its documents, each followed by the tokenizer's eos id,
as raw little-endian uint16 (vocabulary up to 65 536) or uint32. Readers map it with
np.memmap, so no split is ever loaded whole into memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase

from headstart.data.tokenizer import tokenizer_fingerprint
from headstart.errors import UsageError

FORMAT = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "validation")  # position = whether a document is held out
_REQUIRED = ("format", "tokenizer", "dtype", "splits")


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 halves the disk and page-cache footprint whenever every id fits in it."""
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


class SplitWriter:
    """Appends documents (ids + eos) to one split file and counts what it wrote."""

    def __init__(self, fh: BinaryIO, dtype: np.dtype, eos: int, tokens: int = 0, documents: int = 0) -> None:
        self.fh = fh
        self.dtype = dtype
        self.eos = eos
        self.tokens = tokens  # already in the file (a resumed run's)
        self.documents = documents

    def write_document(self, ids: list[int] | np.ndarray) -> int:
        """Write one document and its eos; return the number of tokens written."""
        array = np.empty(len(ids) + 1, dtype=self.dtype)
        array[:-1] = ids
        array[-1] = self.eos
        self.fh.write(array.tobytes())
        self.tokens += len(array)
        self.documents += 1
        return len(array)


def load_manifest(data_dir: str | Path) -> dict[str, Any]:
    """Read DIR/manifest.json; `data_dir` is added (not stored on disk) so messages can name it."""
    path = Path(data_dir) / MANIFEST
    fix = f"run `headstart prepare --out {data_dir}` (again)"
    if not path.is_file():
        raise UsageError(f"{data_dir} is not a prepared data folder (no {MANIFEST})", fix)
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{path} is corrupt ({err})", fix) from err
    if not isinstance(manifest, dict) or any(key not in manifest for key in _REQUIRED):
        raise UsageError(f"{path} is not a headstart data manifest", fix)
    if manifest["format"] != FORMAT:
        raise UsageError(f"{path} has format {manifest['format']}, this headstart reads {FORMAT}", fix)
    manifest["data_dir"] = str(data_dir)
    return manifest


def data_identity(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a resumed search, training run or logit cache must agree with: the tokenizer and each split's size."""
    return {"tokenizer": manifest["tokenizer"]["fingerprint"],
            **{f"{split}_tokens": manifest["splits"][split]["tokens"] for split in SPLITS}}


def open_split(manifest: dict[str, Any], split: str) -> np.memmap:
    """Memory-map one split's tokens, checking the file holds exactly what the manifest says."""
    if split not in manifest["splits"]:
        raise UsageError(
            f"{manifest['data_dir']} has no split {split!r}", f"use one of {', '.join(manifest['splits'])}"
        )
    info = manifest["splits"][split]
    path = Path(manifest["data_dir"]) / info["file"]
    dtype = np.dtype(manifest["dtype"]).newbyteorder("<")
    expected = info["tokens"] * dtype.itemsize
    actual = path.stat().st_size if path.is_file() else None
    if actual != expected:
        raise UsageError(
            f"{path} should hold {expected} bytes but {'is missing' if actual is None else f'has {actual}'}",
            f"re-run `headstart prepare --out {manifest['data_dir']}`",
        )
    return np.memmap(path, dtype=dtype, mode="r", shape=(info["tokens"],))


def check_tokenizer_matches(
    manifest: dict[str, Any], tokenizer_or_fingerprint: PreTrainedTokenizerBase | Tokenizer | str, what: str = "model"
) -> None:
    """Refuse to pair data with a model whose tokenizer is not the one the data was made with."""
    data_tok = manifest["tokenizer"]
    if isinstance(tokenizer_or_fingerprint, str):
        fingerprint, name = tokenizer_or_fingerprint, "another tokenizer"
    else:
        fingerprint = tokenizer_fingerprint(tokenizer_or_fingerprint)
        name = getattr(tokenizer_or_fingerprint, "name_or_path", "") or "another tokenizer"
    if fingerprint != data_tok["fingerprint"]:
        raise UsageError(
            f"data in {manifest.get('data_dir', 'the data folder')} was tokenized with tokenizer "
            f"{data_tok['name']} (fingerprint {data_tok['fingerprint'][:12]}), but the {what} uses "
            f"{name} (fingerprint {fingerprint[:12]})",
            "re-run `headstart prepare --tokenizer <model folder>`",
        )
