"""Perplexity of a model on a raw text file, tokenized with the model's own tokenizer.

Needs no prepared data folder, so a model card's number can be checked from the text alone.
"""

from __future__ import annotations

from pathlib import Path

import torch

from headstart.data import load_tokenizer
from headstart.errors import UsageError
from headstart.eval.perplexity import EvalResult, evaluate_windows
from headstart.model.decoder import Decoder


def evaluate_text(model: Decoder, text_file: str | Path, tokens: int, seq_len: int) -> EvalResult:
    """Loss on the first `tokens` predicted tokens of the file, in back-to-back windows of `seq_len`."""
    ids = load_tokenizer(model.source_dir)(Path(text_file).read_text(), add_special_tokens=False)["input_ids"]
    n = min(tokens // seq_len, (len(ids) - 1) // seq_len)
    if n < 1:
        raise UsageError(f"{text_file} has fewer than {seq_len + 1} tokens", "give a longer text or a shorter window")
    ids = torch.tensor(ids[: n * seq_len + 1])
    windows = torch.stack([ids[i * seq_len: (i + 1) * seq_len + 1] for i in range(n)])
    return evaluate_windows(model, windows)
