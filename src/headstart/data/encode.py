"""Batch-encoding documents to token arrays, in this process or in worker processes.

By default one process encodes, its batch encode spread over every core by the tokenizers
library. With `workers` > 1, that many processes (one core each) encode batches side by side and
also turn the ids into arrays, so the process that reads and writes does less per document; a
few batches are in flight at once, and results come back in input order, so the output is the
same bytes whatever the number of workers.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import TypeVar

import numpy as np
from tokenizers import Tokenizer

Item = TypeVar("Item")
_worker_backend: Tokenizer | None = None  # in a worker process: its own copy of the tokenizer


def encode_texts(backend: Tokenizer, texts: list[str], dtype: np.dtype) -> list[np.ndarray]:
    """Each text's ids (no special tokens added) as an array of the data's token dtype."""
    return [np.asarray(e.ids, dtype=dtype) for e in backend.encode_batch_fast(texts, add_special_tokens=False)]


def _start_worker(tokenizer_file: str) -> None:
    global _worker_backend
    os.environ["RAYON_NUM_THREADS"] = "1"  # one core per worker: the workers are the parallelism
    _worker_backend = Tokenizer.from_file(tokenizer_file)


def _encode_in_worker(texts: list[str], dtype: str) -> list[np.ndarray]:
    return encode_texts(_worker_backend, texts, np.dtype(dtype))


def encoded_batches(batches: Iterator[tuple[Item, list[str]]], backend: Tokenizer, tokenizer_file: Path,
                    dtype: np.dtype, workers: int | None) -> Iterator[tuple[Item, list[np.ndarray]]]:
    """(item, its texts' token arrays) for each (item, texts), in order; `tokenizer_file` is `backend` on disk."""
    if not workers or workers <= 1:
        for item, texts in batches:
            yield item, encode_texts(backend, texts, dtype)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker,
                             initargs=(str(tokenizer_file),)) as pool:
        pending: deque = deque()
        for item, texts in batches:
            pending.append((item, pool.submit(_encode_in_worker, texts, dtype.str)))
            if len(pending) > 2 * workers:  # bounded read-ahead: memory for a few batches, not the corpus
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()
