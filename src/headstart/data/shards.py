"""Token shards on disk: each split a sequence of raw token files, described by manifest.json.

A split is the concatenation of its documents, each followed by the tokenizer's eos id, as raw
little-endian uint16 (vocabulary up to 65 536) or uint32, cut into shards of `shard_tokens`
tokens (train-00000.bin, train-00001.bin, ...; the last one shorter), so billions of tokens are
written and resumed a bounded file at a time; a document may run on into the next shard.
Readers map each shard with np.memmap and read across their boundaries as from one file, so
no split is ever loaded whole into memory. Format 1 (one file per split, "file" in the
manifest) is still read.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase

from headstart.data.tokenizer import tokenizer_fingerprint
from headstart.errors import UsageError

FORMAT = 2
READS = (1, 2)  # format 1: one file per split
MANIFEST = "manifest.json"
SPLITS = ("train", "validation")  # position = whether a document is held out
SHARD_TOKENS = 1 << 28  # 512 MiB of uint16 per shard
IN_PROGRESS = ".partial"  # suffix of the shard being written: a name without it is a finished shard
_REQUIRED = ("format", "tokenizer", "dtype", "splits")
_REQUIRED_FROM_2 = ("shard_tokens",)


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 halves the disk and page-cache footprint whenever every id fits in it."""
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.bin"


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SplitWriter:
    """Appends documents (ids + eos) to one split's shards in `folder`, one shard at a time.

    The shard being written is NAME.partial; once it holds `shard_tokens` tokens it is synced and
    renamed to NAME (finished) before the next begins. Made with the counts of an earlier run's
    last good point, it first cuts the split back to exactly that point.
    """

    def __init__(self, folder: Path, split: str, dtype: np.dtype, eos: int, shard_tokens: int, tokens: int = 0,
                 documents: int = 0) -> None:
        self.folder, self.split, self.dtype, self.eos, self.shard_tokens = folder, split, dtype, eos, shard_tokens
        self.tokens = tokens  # already written (a resumed run's)
        self.documents = documents
        self._fh = None
        self._cut_back()

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        """Let go of the shard in progress, finished or not (a late flush of a dropped handle could land after a
        resumed run has cut the file back)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _path(self, index: int, finished: bool) -> Path:
        return self.folder / (shard_name(self.split, index) + ("" if finished else IN_PROGRESS))

    def _cut_back(self) -> None:
        """Drop what lies past `tokens` (a killed run may have gone on, even finished a shard after its last
        good point); the shard that point lies in becomes the one in progress again."""
        current, keep = divmod(self.tokens, self.shard_tokens)
        for index in range(current):
            if not self._path(index, finished=True).is_file():
                raise UsageError(f"{self._path(index, True)} is missing from an interrupted prepare",
                                 f"remove {self.folder} and run the same command again")
        pattern = re.compile(rf"{re.escape(self.split)}-(\d+)\.bin({re.escape(IN_PROGRESS)})?")
        for path in self.folder.iterdir():
            match = pattern.fullmatch(path.name)
            if match and int(match[1]) > current:
                path.unlink()
        if self._path(current, finished=True).exists():
            os.replace(self._path(current, finished=True), self._path(current, finished=False))
        if keep:  # open, so that `close` finishes it even when nothing is left to write
            os.truncate(self._path(current, finished=False), keep * self.dtype.itemsize)
            self._fh = open(self._path(current, finished=False), "ab")  # noqa: SIM115
        else:
            self._path(current, finished=False).unlink(missing_ok=True)

    def write_document(self, ids: list[int] | np.ndarray) -> int:
        """Write one document and its eos; return the number of tokens written."""
        array = np.empty(len(ids) + 1, dtype=self.dtype)
        array[:-1] = ids
        array[-1] = self.eos
        done = 0
        while done < len(array):
            if self._fh is None:
                self._fh = open(self._path(self.tokens // self.shard_tokens, finished=False), "ab")  # noqa: SIM115
            piece = array[done:done + self.shard_tokens - self.tokens % self.shard_tokens]
            self._fh.write(piece.tobytes())
            done += len(piece)
            self.tokens += len(piece)
            if self.tokens % self.shard_tokens == 0:
                self._finish_shard()
        self.documents += 1
        return len(array)

    def _finish_shard(self) -> None:
        self.sync()
        self._fh.close()
        self._fh = None
        index = (self.tokens - 1) // self.shard_tokens
        os.replace(self._path(index, finished=False), self._path(index, finished=True))
        _sync(self.folder)

    def sync(self) -> None:
        """Make what was written so far durable (before a progress record says it is)."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> list[str]:
        """Finish the last, shorter shard; return the names of all the split's shards, in order."""
        if self._fh is not None:
            self._finish_shard()
        return [shard_name(self.split, index) for index in range(-(-self.tokens // self.shard_tokens))]


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
    if manifest["format"] not in READS:
        raise UsageError(f"{path} has format {manifest['format']}, this headstart reads "
                         f"{' and '.join(map(str, READS))}", fix)
    if manifest["format"] >= 2 and any(key not in manifest for key in _REQUIRED_FROM_2):
        raise UsageError(f"{path} is not a headstart data manifest", fix)
    manifest["data_dir"] = str(data_dir)
    return manifest


def data_identity(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a resumed search, training run or logit cache must agree with: the tokenizer and each split's size
    (not how the split is cut into shards, nor the manifest's format)."""
    return {"tokenizer": manifest["tokenizer"]["fingerprint"],
            **{f"{split}_tokens": manifest["splits"][split]["tokens"] for split in SPLITS}}


class SplitTokens:
    """One split's tokens as one sequence over its memory-mapped shards: len(), slices, np.asarray."""

    def __init__(self, shards: list[np.memmap], dtype: np.dtype) -> None:
        self.shards = [np.asarray(s) for s in shards]  # plain views: slicing a np.memmap costs more
        self.dtype = dtype
        # shard i holds tokens starts[i]:starts[i + 1]; Python ints, as bisect on a list is cheapest per window
        self.starts = list(itertools.accumulate((len(s) for s in shards), initial=0))

    def __len__(self) -> int:
        return self.starts[-1]

    def read_into(self, out: np.ndarray, start: int) -> None:
        """Fill `out` with tokens start:start + len(out), from as many shards as they lie in."""
        shard = bisect.bisect_right(self.starts, start) - 1
        done = 0
        while done < len(out):
            offset = start + done - self.starts[shard]
            piece = self.shards[shard][offset:offset + len(out) - done]
            out[done:done + len(piece)] = piece
            done += len(piece)
            shard += 1

    def windows(self, starts: np.ndarray, length: int) -> np.ndarray:
        """int64 rows tokens[s:s + length] for each s in `starts` (all within the split)."""
        rows = np.empty((len(starts), length), dtype=np.int64)
        for row, start in zip(rows, starts.tolist(), strict=True):
            self.read_into(row, start)
        return rows

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, step = key.indices(len(self))
        if step != 1:
            raise ValueError("a split reads contiguous slices only")
        out = np.empty(max(0, stop - start), dtype=self.dtype)
        self.read_into(out, start)
        return out

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)


def _shard_files(manifest: dict[str, Any], split: str) -> list[tuple[Path, int]]:
    """(path, tokens) of each shard of a split, in order; a format-1 split is one shard."""
    info, folder = manifest["splits"][split], Path(manifest["data_dir"])
    if manifest["format"] == 1:
        return [(folder / info["file"], info["tokens"])]
    size, names = manifest["shard_tokens"], info["shards"]
    if len(names) != -(-info["tokens"] // size):
        raise UsageError(f"{folder / MANIFEST} lists {len(names)} shards for {info['tokens']} {split} tokens",
                         f"re-run `headstart prepare --out {folder}`")
    return [(folder / name, min(size, info["tokens"] - i * size)) for i, name in enumerate(names)]


def open_split(manifest: dict[str, Any], split: str) -> SplitTokens:
    """Memory-map one split's shards, checking each file holds exactly what the manifest says."""
    if split not in manifest["splits"]:
        raise UsageError(
            f"{manifest['data_dir']} has no split {split!r}", f"use one of {', '.join(manifest['splits'])}"
        )
    dtype = np.dtype(manifest["dtype"]).newbyteorder("<")
    shards = []
    for path, tokens in _shard_files(manifest, split):
        expected = tokens * dtype.itemsize
        actual = path.stat().st_size if path.is_file() else None
        if actual != expected:
            raise UsageError(
                f"{path} should hold {expected} bytes but {'is missing' if actual is None else f'has {actual}'}",
                f"re-run `headstart prepare --out {manifest['data_dir']}`",
            )
        shards.append(np.memmap(path, dtype=dtype, mode="r", shape=(tokens,)) if tokens else np.zeros(0, dtype))
    return SplitTokens(shards, dtype)


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
