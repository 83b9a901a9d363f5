"""`headstart prepare`: text/jsonl/parquet files -> token shards + manifest.json in --out."""

from __future__ import annotations

import argparse
import shlex
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    tok = parser.add_mutually_exclusive_group()
    tok.add_argument("--tokenizer", metavar="T", help="tokenizer or model folder, or gpt2 / neox / smollm2")
    tok.add_argument(
        "--train-tokenizer",
        type=int,
        metavar="VOCAB_SIZE",
        help="train a byte-level BPE of this size on the train split (saved to OUT/tokenizer/)",
    )
    parser.add_argument(
        "--input",
        nargs="+",
        required=True,
        metavar="FILE",
        help="files (.txt, .md, .rst = one document; .jsonl line / .parquet row = one; also .txt.gz, .jsonl.gz), "
        "folders of them (extensions in any case; hidden files and folders skipped), hf:DATASET, or corpus:NAME (a "
        "source of the offline corpus: shakespeare, kjv, austen, brown, fortunes, python_docs)",
    )
    parser.add_argument("--glob", nargs="+", metavar="PATTERN", help="in folders, read the files whose name or path "
                        "below the folder matches one of these (case-insensitive, e.g. '*.tex' 'docs/*'); files of "
                        "no known type are read as text")
    parser.add_argument("--encoding", default="utf-8", help="encoding of the text files (default utf-8, whose "
                        "byte-order mark is dropped); files in folders that do not decode are skipped and counted, "
                        "a file named on --input that does not is an error")
    parser.add_argument("--out", required=True, metavar="DIR", help="data folder to write (replaced atomically)")
    parser.add_argument("--text-field", default="text", help="jsonl field / parquet column with the text")
    parser.add_argument(
        "--val-fraction",
        type=float,
        metavar="F",
        help="fraction of the text (whole documents, seeded hash order) held out; default 0.05, or 0 with --val-docs",
    )
    parser.add_argument("--val-docs", nargs="+", metavar="GLOB", help="inputs that go to validation whole")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation pick")
    parser.add_argument("--max-tokens", type=_count, metavar="N",
                        help="keep the first documents holding N tokens (e.g. 2B; both splits), reading no further")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="tokenize in N processes (default: one, its batch encode on every core)")


def _count(text: str) -> int:
    """A token count such as 2000000, 2e9 or 2B, for argparse."""
    from headstart.train.config import parse_count

    return parse_count(text)


def command_line(args: argparse.Namespace) -> str:
    """The command as the user could re-run it, for the manifest's created_by."""
    words = ["headstart", "prepare"]
    if args.tokenizer is not None:
        words += ["--tokenizer", args.tokenizer]
    if args.train_tokenizer is not None:
        words += ["--train-tokenizer", str(args.train_tokenizer)]
    words += ["--input", *args.input, "--out", args.out, "--text-field", args.text_field, "--seed", str(args.seed)]
    if args.val_fraction is not None:
        words += ["--val-fraction", str(args.val_fraction)]
    if args.val_docs:
        words += ["--val-docs", *args.val_docs]
    if args.glob:
        words += ["--glob", *args.glob]
    if args.encoding != "utf-8":
        words += ["--encoding", args.encoding]
    if args.max_tokens is not None:
        words += ["--max-tokens", str(args.max_tokens)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from headstart.atomic import check_out_writable
    from headstart.data.documents import resolve_sources
    from headstart.data.prepare import prepare_data  # lazy: keeps `headstart --help` fast

    check_out_writable(args.out)
    manifest = prepare_data(
        inputs=resolve_sources(args.input, globs=args.glob, encoding=args.encoding),
        out=args.out,
        tokenizer=args.tokenizer,
        train_vocab_size=args.train_tokenizer,
        text_field=args.text_field,
        val_fraction=args.val_fraction,
        val_docs=args.val_docs,
        seed=args.seed,
        created_by=command_line(args),
        max_tokens=args.max_tokens,
        workers=args.workers,
    )
    splits = manifest["splits"]
    print(
        f"wrote {args.out}: {splits['train']['tokens']:,} train tokens ({splits['train']['documents']} documents), "
        f"{splits['validation']['tokens']:,} validation tokens ({splits['validation']['documents']} documents), "
        f"{manifest['dtype']}, tokenizer {manifest['tokenizer']['name']}"
    )
    return {"out": args.out, "tokenizer": manifest["tokenizer"], "dtype": manifest["dtype"], "splits": splits}
