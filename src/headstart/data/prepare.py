"""The prepare step: inputs -> whole-document split -> (trained) tokenizer -> token shards + manifest.

Passes over the inputs are streamed, so memory holds one batch of text plus one byte count per
document. Everything is written into a work folder (`.OUT.partial`) that becomes `out` only at
the end; a run killed part-way leaves it behind, and the same command run again keeps its
trained tokenizer and the shards written so far, and goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from headstart.atomic import resumable_dir, write_json_atomic
from headstart.data.documents import Source, read_documents, resolve_sources
from headstart.data.encode import encoded_batches
from headstart.data.shards import FORMAT, MANIFEST, SHARD_TOKENS, SPLITS, SplitWriter, token_dtype
from headstart.data.split import choose_validation, matching_sources, resolve_val_fraction
from headstart.data.tokenizer import (
    backend_of,
    check_bpe_vocab_size,
    eos_id,
    load_tokenizer,
    tokenizer_fingerprint,
    train_bpe,
    vocab_size,
)
from headstart.errors import UsageError
from headstart.progress import progress_bar

BATCH_CHARS = 1 << 22  # text per batch-encode call: big enough to keep every core busy
PROGRESS = "progress.json"  # in the work folder while tokenizing: how far the shards are good
TOKENIZER_DONE = "trained.json"  # in the work folder's tokenizer/: the trained BPE is whole


def _check_out_dir(out: Path) -> None:
    """Replacing an earlier data folder is fine; replacing some other folder's contents is not."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).exists())):
        raise UsageError(
            f"--out {out} exists and is not a headstart data folder", "choose a new --out or remove it first"
        )


@dataclass(frozen=True)
class StoredTokens:
    """The measuring pass's token ids under --max-tokens, on disk: the writing pass reads them instead of
    encoding the text a second time. Document i's ids are tokens[ends[i - 1]:ends[i]] (no eos)."""

    tokens: np.ndarray
    ends: np.ndarray

    def batches(self, batches: Iterator[tuple[Any, list[str]]], first: int) -> Iterator[tuple[Any, list[np.ndarray]]]:
        """What `encoded_batches` gives for these batches, whose first document is document `first`."""
        for batch, texts in batches:
            ids = range(first, first + len(texts))
            yield batch, [self.tokens[(self.ends[i - 1] if i else 0):self.ends[i]] for i in ids]
            first += len(texts)


def _measure(sources: list[Source], text_field: str, tok: PreTrainedTokenizerBase | None, max_tokens: int | None,
             store: Path | None, workers: int | None) -> tuple[list[np.ndarray], StoredTokens | None]:
    """UTF-8 bytes of every document, per source: what the split is decided on.

    With `max_tokens`, only the first documents in input order count, as many as it takes to reach
    that many tokens of `tok` (each document's eos included): reading stops there, so a budget
    of a few billion tokens can be cut from a corpus (or a streamed dataset) of any size. Their
    tokens are kept in `store` for the writing pass.
    """
    stored = None
    if max_tokens is None:
        sizes = [np.array([len(t.encode("utf-8")) for t in read_documents(s, text_field)], dtype=np.int64)
                 for s in progress_bar(sources, desc="measuring", unit="file")]  # a dated line every 30 s in a log
    else:
        sizes, stored = _measure_prefix(sources, text_field, tok, max_tokens, store, workers)
    if sum(len(s) for s in sizes) == 0:
        raise UsageError("the corpus is empty: the inputs hold no text", "give files that contain text")
    return sizes, stored


def _measure_prefix(sources: list[Source], text_field: str, tok: PreTrainedTokenizerBase, max_tokens: int,
                    store: Path, workers: int | None) -> tuple[list[np.ndarray], StoredTokens]:
    """`_measure` of the first documents that hold `max_tokens` tokens (the last one crosses the line)."""
    dtype = token_dtype(vocab_size(tok))
    tok.save_pretrained(store)  # tokenizer.json, for worker processes
    sizes: list[list[int]] = [[] for _ in sources]
    ends: list[int] = []
    docs = ((s, "", text) for s, source in enumerate(sources) for text in read_documents(source, text_field))
    batches = ((batch, [text for _, _, text in batch]) for batch in _batches(docs))
    with contextlib.closing(encoded_batches(batches, backend_of(tok), store / "tokenizer.json", dtype, workers)) as \
            encoded, open(store / "tokens.bin", "wb") as fh:
        for s, text, ids in _up_to(encoded, max_tokens):
            sizes[s].append(len(text.encode("utf-8")))
            fh.write(ids.tobytes())
            ends.append((ends[-1] if ends else 0) + len(ids))
    tokens = np.memmap(store / "tokens.bin", dtype, "r") if ends and ends[-1] else np.zeros(0, dtype)
    return [np.array(z, dtype=np.int64) for z in sizes], StoredTokens(tokens, np.array(ends, dtype=np.int64))


def _up_to(encoded: Iterator[tuple[list[tuple[int, str, str]], list[np.ndarray]]],
           max_tokens: int) -> Iterator[tuple[int, str, np.ndarray]]:
    """(source index, text, ids) of each document until the one that brings the count to `max_tokens`."""
    tokens = 0
    for batch, arrays in encoded:
        for (s, _, text), ids in zip(batch, arrays, strict=True):
            yield s, text, ids
            tokens += len(ids) + 1
            if tokens >= max_tokens:
                return


@contextlib.contextmanager
def _store_beside(out: Path) -> Iterator[Path]:
    """A scratch folder .OUT.tokens beside `out`, gone when the step ends (it is remade by a rerun)."""
    store = out.with_name(f".{out.name}.tokens")
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    try:
        yield store
    finally:
        shutil.rmtree(store, ignore_errors=True)


def _documents(sources: list[Source], masks: list[np.ndarray], text_field: str) -> Iterator[tuple[int, str, str]]:
    """(source index, split, text) for every document the masks cover (all, or a --max-tokens prefix), in order."""
    for s, source in enumerate(sources):
        for index, text in enumerate(itertools.islice(read_documents(source, text_field), len(masks[s]))):
            yield s, SPLITS[int(masks[s][index])], text


def _batches(docs: Iterator[tuple[int, str, str]]) -> Iterator[list[tuple[int, str, str]]]:
    batch: list[tuple[int, str, str]] = []
    chars = 0
    for doc in docs:
        batch.append(doc)
        chars += len(doc[2])
        if chars >= BATCH_CHARS:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def _tokenize_into(
    folder: Path, tok: PreTrainedTokenizerBase, docs: Iterator[tuple[int, str, str]], n_sources: int, total_bytes: int,
    shard_tokens: int, workers: int | None = None, stored: StoredTokens | None = None,
) -> tuple[dict[str, dict[str, Any]], np.ndarray]:
    """Batch-encode documents (by `workers` processes, see headstart.data.encode; or read them from `stored`)
    into each split's shards; return split totals and per-source tokens.

    After each batch the shard in progress is synced and PROGRESS records how far each split is
    good; a run that finds it (after a crash) keeps the finished shards before that point, cuts
    the one it lies in back to it and goes on from there.
    """
    dtype = token_dtype(vocab_size(tok))
    eos = eos_id(tok)
    done = _read_progress(folder, n_sources)
    per_source = np.array(done["per_source"], dtype=np.int64)
    with contextlib.ExitStack() as stack:
        writers = {split: stack.enter_context(SplitWriter(folder, split, dtype, eos, shard_tokens, **counts))
                   for split, counts in done["splits"].items()}
        bar = stack.enter_context(progress_bar(total=total_bytes, initial=done["bytes"], unit="B", unit_scale=True,
                                               desc="tokenizing"))
        batches = ((batch, [text for _, _, text in batch])
                   for batch in _batches(itertools.islice(docs, done["documents"], None)))
        encoded = stored.batches(batches, done["documents"]) if stored is not None else \
            encoded_batches(batches, backend_of(tok), folder / "tokenizer" / "tokenizer.json", dtype, workers)
        for batch, arrays in encoded:
            for (s, split, text), ids in zip(batch, arrays, strict=True):
                per_source[s, SPLITS.index(split)] += writers[split].write_document(ids)
                n_bytes = len(text.encode("utf-8"))
                done["bytes"] += n_bytes
                bar.update(n_bytes)
            done["documents"] += len(batch)
            for writer in writers.values():
                writer.sync()
            done["splits"] = {split: {"tokens": w.tokens, "documents": w.documents} for split, w in writers.items()}
            done["per_source"] = per_source.tolist()
            write_json_atomic(folder / PROGRESS, done)
        totals = {split: {"shards": w.close(), "tokens": w.tokens, "documents": w.documents}
                  for split, w in writers.items()}
    (folder / PROGRESS).unlink(missing_ok=True)
    return totals, per_source


def _read_progress(folder: Path, n_sources: int) -> dict[str, Any]:
    """How far an earlier, interrupted run got (nothing done when there was none)."""
    try:
        return json.loads((folder / PROGRESS).read_text())
    except (OSError, json.JSONDecodeError):
        return {"documents": 0, "bytes": 0, "splits": {split: {"tokens": 0, "documents": 0} for split in SPLITS},
                "per_source": [[0] * len(SPLITS) for _ in range(n_sources)]}


def _source_entries(sources: list[Source], masks: list[np.ndarray], per_source: np.ndarray) -> list[dict[str, Any]]:
    entries = []
    for source, mask, tokens in zip(sources, masks, per_source, strict=True):
        docs = {"train": int((~mask).sum()), "validation": int(mask.sum())}
        entries.append(
            {
                "path": source.path,
                "name": source.name,
                "documents": len(mask),
                "tokens": int(tokens.sum()),
                "splits": {
                    split: {"documents": docs[split], "tokens": int(tokens[i])} for i, split in enumerate(SPLITS)
                },
            }
        )
    return entries


def _tokenizer_into(
    folder: Path, tok: PreTrainedTokenizerBase | None, train_vocab_size: int | None, train_texts: Iterator[str], n: int
) -> PreTrainedTokenizerBase:
    """Save the given tokenizer to folder, or train one there on the train texts (once: a resumed run reuses it)."""
    if tok is not None:
        tok.save_pretrained(folder)
        return tok
    if (folder / TOKENIZER_DONE).is_file():
        return load_tokenizer(str(folder))
    trained = train_bpe(train_texts, train_vocab_size, folder, length=n)
    (folder / TOKENIZER_DONE).write_text(json.dumps({"vocab_size": train_vocab_size}) + "\n")
    if vocab_size(trained) < train_vocab_size:
        print(f"headstart: warning: the tokenizer has {vocab_size(trained):,} tokens, not {train_vocab_size:,}: the "
              "train split holds no more merges", file=sys.stderr)
    return trained


def prepare_data(
    inputs: list[str | Path],
    out: str | Path,
    tokenizer: str | None = None,
    train_vocab_size: int | None = None,
    text_field: str = "text",
    val_fraction: float | None = None,
    val_docs: list[str] | None = None,
    seed: int = 0,
    created_by: str = "headstart prepare",
    max_tokens: int | None = None,
    workers: int | None = None,
    shard_tokens: int = SHARD_TOKENS,
) -> dict[str, Any]:
    """Tokenize `inputs` into `out` (see headstart.data.shards for the layout); return the manifest.

    Give exactly one of `tokenizer` (folder or short name) and `train_vocab_size` (train a
    byte-level BPE of that size on the train split, saved to out/tokenizer/). `max_tokens` keeps
    the first documents holding that many tokens (both splits, eos included); `workers` > 1
    tokenizes in that many processes (the same bytes); `shard_tokens` is the size of every shard
    but each split's last. Every check on the arguments runs before the corpus is read.
    """
    if (tokenizer is None) == (train_vocab_size is None):
        raise UsageError("give exactly one of --tokenizer and --train-tokenizer", "see `headstart prepare --help`")
    if max_tokens is not None and (tokenizer is None or max_tokens < 1):
        raise UsageError(f"--max-tokens {max_tokens} needs --tokenizer and a positive count",
                         "give --tokenizer T (a trained tokenizer's tokens are unknown before it is trained)")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers} is not a number of processes", "give 1 or more")
    if isinstance(shard_tokens, bool) or not isinstance(shard_tokens, int) or shard_tokens < 1:
        raise UsageError(f"shard_tokens {shard_tokens!r} is not a number of tokens", "give a positive integer")
    out, val_docs = Path(out), val_docs or []
    sources = resolve_sources(inputs)
    _check_out_dir(out)
    if train_vocab_size is not None:
        check_bpe_vocab_size(train_vocab_size)
    given = load_tokenizer(tokenizer) if tokenizer is not None else None
    if given is not None:
        eos_id(given)
    val_fraction = resolve_val_fraction(val_fraction, val_docs)
    named = matching_sources(sources, val_docs)
    with _store_beside(out) if max_tokens is not None else contextlib.nullcontext() as store:
        return _prepare(sources, out, tokenizer, given, train_vocab_size, text_field, val_fraction, val_docs, named,
                        seed, created_by, max_tokens, workers, shard_tokens, store)


def _prepare(sources: list[Source], out: Path, tokenizer: str | None, given: PreTrainedTokenizerBase | None,
             train_vocab_size: int | None, text_field: str, val_fraction: float, val_docs: list[str],
             named: np.ndarray, seed: int, created_by: str, max_tokens: int | None, workers: int | None,
             shard_tokens: int, store: Path | None) -> dict[str, Any]:
    """prepare_data once its arguments are checked: measure, split, (train a tokenizer,) tokenize."""
    sizes, stored = _measure(sources, text_field, given, max_tokens, store, workers)
    masks = choose_validation(sources, sizes, named, val_fraction, seed)
    identity = {  # what the tokens depend on: a crashed run with the same identity is resumed
        "format": FORMAT, "shard_tokens": shard_tokens, "text_field": text_field, "max_tokens": max_tokens,
        "sources": [[s.path, s.name, len(z), int(z.sum())] for s, z in zip(sources, sizes, strict=True)],
        "validation": hashlib.sha256(b"".join(np.packbits(m).tobytes() for m in masks)).hexdigest(),
        "tokenizer": tokenizer_fingerprint(given) if given is not None else {"train_bpe": train_vocab_size},
    }
    with resumable_dir(out, identity) as tmp:
        train_texts = (text for _, split, text in _documents(sources, masks, text_field) if split == "train")
        n_train = sum(int((~m).sum()) for m in masks)
        tok = _tokenizer_into(tmp / "tokenizer", given, train_vocab_size, train_texts, n_train)
        total_bytes = sum(int(s.sum()) for s in sizes)
        splits, per_source = _tokenize_into(tmp, tok, _documents(sources, masks, text_field), len(sources), total_bytes,
                                            shard_tokens, workers, stored)
        manifest = {
            "format": FORMAT,
            "tokenizer": {
                "name": str(tokenizer) if given
                else f"byte-level BPE of {vocab_size(tok)} tokens trained on this corpus",
                "fingerprint": tokenizer_fingerprint(tok),
                "vocab_size": vocab_size(tok),
                "eos_id": eos_id(tok),
            },
            "dtype": token_dtype(vocab_size(tok)).name,
            "shard_tokens": shard_tokens,
            "splits": splits,
            "split_rule": {"val_fraction": val_fraction, "val_docs": val_docs, "seed": seed, "by": "utf-8 bytes"},
            "max_tokens": max_tokens,
            "sources": _source_entries(sources, masks, per_source),
            "created_by": created_by,
        }
        write_json_atomic(tmp / MANIFEST, manifest)
    return manifest
