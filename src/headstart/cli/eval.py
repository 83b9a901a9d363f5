"""`headstart eval`: validation loss, perplexity and tokens/s of a model on prepared shards."""

from __future__ import annotations

import argparse

from headstart.eval import evaluate_windows, scoring_windows
from headstart.model import load_model
from headstart.runtime import pick_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder or short name (e.g. smollm2-135m)")
    parser.add_argument("--data", required=True, help="data folder written by `headstart prepare`")
    parser.add_argument("--split", default="validation", choices=["train", "validation"])
    parser.add_argument("--tokens", type=int, default=65536, help="how many tokens to score (default 65536)")
    parser.add_argument("--seq-len", type=int, default=512, help="window length (default 512)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def run(args: argparse.Namespace) -> dict:
    model = load_model(args.model)
    windows = scoring_windows(model, args.data, args.split, args.tokens, args.seq_len, what=f"model {args.model}")
    seq_len = windows.shape[1] - 1
    result = evaluate_windows(model.to(pick_device(args.device)), windows, args.batch_size, progress=True)
    print(f"{args.model} on {args.data} ({args.split}, {result.tokens} tokens, seq {seq_len}): "
          f"loss {result.loss:.4f}  perplexity {result.perplexity:.2f}  {result.tokens_per_s:.0f} tokens/s")
    return {"model": str(args.model), "data": str(args.data), "split": args.split, "seq_len": seq_len,
            **result.to_dict()}
