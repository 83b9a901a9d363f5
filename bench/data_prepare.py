"""Throughput of `headstart prepare` (whole pipeline) against the bare batch encode it wraps.

Usage: python bench/data_prepare.py --tokenizer DIR --input FILES... [--train-tokenizer 4096]
Prints one JSON line: text MB, tokens, seconds and MB/s for the pipeline and the bare encode.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from headstart.data.documents import read_documents, resolve_sources
from headstart.data.prepare import prepare_data
from headstart.data.tokenizer import backend_of, load_tokenizer


def bare_encode_seconds(tokenizer_dir: Path, inputs: list[str]) -> tuple[float, int]:
    """The floor: one batch encode of every document, no reading, splitting or writing."""
    texts = [t for s in resolve_sources(inputs) for t in read_documents(s)]
    backend = backend_of(load_tokenizer(tokenizer_dir))
    start = time.perf_counter()
    n_tokens = sum(len(e.ids) for e in backend.encode_batch_fast(texts, add_special_tokens=False))
    return time.perf_counter() - start, n_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer")
    parser.add_argument("--train-tokenizer", type=int)
    parser.add_argument("--input", nargs="+", required=True)
    args = parser.parse_args()
    mb = sum(len(t.encode()) for s in resolve_sources(args.input) for t in read_documents(s)) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        manifest = prepare_data(args.input, Path(tmp) / "data", args.tokenizer, args.train_tokenizer)
        pipeline_s = time.perf_counter() - start
        bare_s, _ = bare_encode_seconds(Path(tmp) / "data" / "tokenizer", args.input)
    tokens = sum(split["tokens"] for split in manifest["splits"].values())
    print(
        json.dumps(
            {
                "tokenizer": manifest["tokenizer"]["name"],
                "text_mb": round(mb, 2),
                "tokens": tokens,
                "prepare_s": round(pipeline_s, 2),
                "prepare_mb_per_s": round(mb / pipeline_s, 2),
                "prepare_tokens_per_s": round(tokens / pipeline_s),
                "bare_encode_s": round(bare_s, 2),
                "bare_encode_mb_per_s": round(mb / bare_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
