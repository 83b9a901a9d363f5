"""`headstart init`: a randomly initialised model of a given architecture, as a Hugging Face folder.

The starting point of a model trained from scratch (the scale-model teacher, or baselines of
an architecture no folder exists for yet): an HF config.json plus a tokenizer.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from headstart.cli.extract import add_overwrite_argument, check_model_out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="a Hugging Face config.json (GPT-NeoX, "
                        "Llama-family or GPT-2) giving the architecture")
    parser.add_argument("--tokenizer", required=True, metavar="T", help="tokenizer folder, or gpt2 / neox / smollm2")
    parser.add_argument("--out", required=True, metavar="DIR", help="model folder to write; an earlier headstart "
                        "model there is replaced atomically, any other folder only with --overwrite")
    add_overwrite_argument(parser)
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    from headstart.data import load_tokenizer, vocab_size
    from headstart.errors import UsageError
    from headstart.model import Decoder, init_weights, save_model
    from headstart.model.checkpoint import decoder_config
    from headstart.subnet import param_count

    check_model_out(args)
    file = Path(args.config)
    try:
        raw = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError(f"architecture file {file} cannot be read ({type(err).__name__})",
                         "give a Hugging Face config.json") from None
    cfg = decoder_config(raw)
    tok = load_tokenizer(args.tokenizer)
    if vocab_size(tok) > cfg.vocab_size:
        raise UsageError(f"tokenizer {args.tokenizer} has {vocab_size(tok)} tokens but the architecture's vocabulary "
                         f"is {cfg.vocab_size}", "raise vocab_size in the config to at least the tokenizer's size")
    model = Decoder(cfg)
    init_weights(model, args.seed)
    save_model(model, args.out, tokenizer_dir=Path(tok.name_or_path))
    n = param_count(cfg)
    print(f"wrote {args.out}: {cfg.family}, {n / 1e6:.2f}M parameters, random init (seed {args.seed})")
    return {"out": str(args.out), "family": cfg.family, "params": n}
