"""Throughput of `headstart prepare` against the bare batch encode it wraps, and of the training loader.

    python bench/data_prepare.py --tokenizer DIR --input FILES... [--workers 1 2] [--shard-tokens N]

In one run: the bare batch encode of every document (the floor: no reading, splitting or
writing; the tokenizers library spreads it over every core), then `prepare_data` whole with each
--workers setting (1: one process, its batch encode on every core; N: N tokenizer processes),
then the training loader (TokenWindows.batch) over the prepared train split, whose shards hold
--shard-tokens tokens each (prepare's default unless given: smaller ones make the loader read
across shards, as it does on billions of tokens). Writes
bench/results/data_prepare.{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import write_results

from headstart.data import TokenWindows
from headstart.data.documents import read_documents, resolve_sources
from headstart.data.prepare import prepare_data
from headstart.data.shards import SHARD_TOKENS
from headstart.data.tokenizer import backend_of, load_tokenizer


def bare_encode_seconds(tokenizer: str, texts: list[str]) -> float:
    """The floor: one batch encode of every document, no reading, splitting or writing."""
    backend = backend_of(load_tokenizer(tokenizer))
    start = time.perf_counter()
    backend.encode_batch_fast(texts, add_special_tokens=False)
    return time.perf_counter() - start


def loader_tokens_per_s(data: Path, seq_len: int, batch_size: int, batches: int) -> float:
    """Tokens/s of the training loader: global batches of `batch_size` windows in shuffled order, on one rank."""
    windows = TokenWindows(data, "train", seq_len)
    windows.batch(0, batch_size, seed=0)  # the epoch's permutation is made once
    start = time.perf_counter()
    for index in range(batches):
        windows.batch(index, batch_size, seed=0)
    return batches * batch_size * seq_len / (time.perf_counter() - start)


def markdown(result: dict) -> str:
    lines = [f"Corpus: {', '.join(result['inputs'])}: {result['text_mb']:.1f} MB of text, {result['tokens']:,} "
             f"tokens with tokenizer {result['tokenizer']}.", "",
             "| what | seconds | MB/s | tokens/s | of the bare encode's speed |", "|---|---|---|---|---|"]
    for row in result["runs"]:
        lines.append(f"| {row['what']} | {row['seconds']:.1f} | {row['mb_per_s']:.2f} | {row['tokens_per_s']:,.0f} | "
                     f"{row['of_bare_encode']:.0%} |")
    loader = result["loader"]
    lines += ["", f"Training loader (TokenWindows.batch, one rank, batches of {loader['batch_size']} x "
              f"{loader['seq_len']} tokens, shuffled, over {loader['shards']} train shards of "
              f"{result['shard_tokens']:,} tokens): **{loader['tokens_per_s']:,.0f} tokens/s**."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--input", nargs="+", required=True)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="prepare's --workers settings to time")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--shard-tokens", type=int, default=SHARD_TOKENS, help="tokens per shard of the prepared data")
    args = parser.parse_args()
    texts = [t for s in resolve_sources(args.input) for t in read_documents(s)]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    bare_s = bare_encode_seconds(args.tokenizer, texts)
    del texts
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            out = Path(tmp) / f"data-{workers}"
            start = time.perf_counter()
            manifest = prepare_data(args.input, out, args.tokenizer, workers=workers, shard_tokens=args.shard_tokens)
            runs.append({"what": f"prepare --workers {workers}", "seconds": time.perf_counter() - start})
        tokens = sum(split["tokens"] for split in manifest["splits"].values())
        loader = {"seq_len": args.seq_len, "batch_size": args.batch_size, "batches": args.batches,
                  "shards": len(manifest["splits"]["train"]["shards"]),
                  "tokens_per_s": loader_tokens_per_s(out, args.seq_len, args.batch_size, args.batches)}
    runs.insert(0, {"what": "bare batch encode", "seconds": bare_s})
    for row in runs:
        row |= {"mb_per_s": mb / row["seconds"], "tokens_per_s": tokens / row["seconds"],
                "of_bare_encode": bare_s / row["seconds"]}
    result = {"inputs": args.input, "tokenizer": manifest["tokenizer"]["name"], "text_mb": mb, "tokens": tokens,
              "shard_tokens": args.shard_tokens, "runs": runs, "loader": loader}
    body = markdown(result)
    write_results("data_prepare", result, body)
    print(body)


if __name__ == "__main__":
    main()
