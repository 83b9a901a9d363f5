"""Choosing the validation documents: whole documents only, deterministic, tokenizer-independent.

The split is measured in UTF-8 bytes of text rather than tokens: it must be decided before a
tokenizer is trained on the train split (`--train-tokenizer`), and measuring it in bytes gives
the same validation documents whatever tokenizer the corpus is prepared with.
"""

from __future__ import annotations

import fnmatch
import hashlib

import numpy as np

from headstart.data.documents import Source
from headstart.errors import UsageError

DEFAULT_VAL_FRACTION = 0.05


def document_key(seed: int, source_name: str, index: int) -> int:
    """A seeded pseudo-random 64-bit rank for one document; lower ranks go to validation first."""
    digest = hashlib.sha256(f"{seed}\0{source_name}\0{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def matching_sources(sources: list[Source], globs: list[str]) -> np.ndarray:
    """Which sources a `--val-docs` glob names (by path or by name); a glob naming none is an error."""
    chosen = np.zeros(len(sources), dtype=bool)
    for glob in globs:
        hits = [fnmatch.fnmatch(s.path, glob) or fnmatch.fnmatch(s.name, glob) for s in sources]
        if not any(hits):
            raise UsageError(f"--val-docs {glob!r} matches no input", "give a glob that matches one of the inputs")
        chosen |= np.array(hits)
    return chosen


def resolve_val_fraction(val_fraction: float | None, val_docs: list[str]) -> float:
    """Named validation files replace the default fraction; an explicit fraction adds to them."""
    if val_fraction is None:
        return 0.0 if val_docs else DEFAULT_VAL_FRACTION
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"--val-fraction {val_fraction} is outside [0, 1)", "use a fraction such as 0.05")
    return val_fraction


def choose_validation(
    sources: list[Source], doc_bytes: list[np.ndarray], named: np.ndarray, val_fraction: float, seed: int
) -> list[np.ndarray]:
    """Per source, a boolean mask of its documents that go to validation.

    Documents of the `named` sources (see `matching_sources`) go there whole. Then documents in
    seeded hash order join until the validation split holds `val_fraction` of the text; the
    last train document never does.
    """
    val = np.concatenate([np.full(len(sizes), bool(hit)) for sizes, hit in zip(doc_bytes, named, strict=True)])
    sizes = np.concatenate(doc_bytes)
    need = val_fraction * sizes.sum() - sizes[val].sum()
    free = np.flatnonzero(~val)
    if need > 0 and len(free) > 1:
        order = free[np.argsort(_keys(sources, doc_bytes, free, seed), kind="stable")]
        taken = int(np.searchsorted(np.cumsum(sizes[order]), need)) + 1
        val[order[: min(taken, len(order) - 1)]] = True
    masks = np.split(val, np.cumsum([len(s) for s in doc_bytes])[:-1])
    _check_both_splits(masks)
    return masks


def _keys(sources: list[Source], doc_bytes: list[np.ndarray], flat_ids: np.ndarray, seed: int) -> np.ndarray:
    """`document_key` of documents given by their position in the concatenation of all sources."""
    starts = np.cumsum([0] + [len(s) for s in doc_bytes])
    source_of = np.searchsorted(starts, flat_ids, side="right") - 1
    return np.array(
        [document_key(seed, sources[s].name, int(k - starts[s])) for s, k in zip(source_of, flat_ids, strict=True)],
        dtype=np.uint64,
    )


def _check_both_splits(masks: list[np.ndarray]) -> None:
    n_val = sum(int(mask.sum()) for mask in masks)
    n_train = sum(int((~mask).sum()) for mask in masks)
    if n_val == 0:
        raise UsageError(
            f"the validation split would be empty (the corpus has {n_train} document(s))",
            "use --val-fraction above 0, --val-docs, or give at least two documents",
        )
    if n_train == 0:
        raise UsageError(
            "the train split would be empty: --val-docs names every input", "leave some inputs out of --val-docs"
        )
