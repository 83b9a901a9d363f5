"""The fixed token windows a model is scored on, checked against the model before any work."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from headstart.data import TokenWindows, check_tokenizer_matches, load_manifest, load_tokenizer
from headstart.errors import UsageError
from headstart.model.decoder import Decoder


def scoring_windows(model: Decoder, data_dir: str | Path, split: str, tokens: int, seq_len: int,
                    what: str = "model", asked: bool = True) -> torch.Tensor:
    """The first `tokens` tokens of a split as windows [n, seq+1], after checking the data fits `model`.

    Refuses data made with another tokenizer, and ids beyond the model's vocabulary. The window length is
    capped at the model's context and the tokens at what the split holds, each with a warning on stderr
    unless they were not the user's (`asked`: the search's own importance scoring).
    """
    manifest = load_manifest(data_dir)
    check_tokenizer_matches(manifest, load_tokenizer(model.source_dir), what=what)
    length = min(seq_len, model.config.max_positions)
    source = TokenWindows(data_dir, split, length)
    windows = source.fixed_windows(tokens)
    short = [f"windows of {length} tokens, the {what}'s context, not {seq_len}"] if length < seq_len else []
    if len(source) < tokens // length:
        short.append(f"{len(windows) * length:,} tokens, all the {split} split holds, not {tokens:,}")
    if short and asked and os.environ.get("RANK", "0") == "0":
        print(f"headstart: warning: scoring on {' and '.join(short)}", file=sys.stderr)
    if int(windows.max()) >= model.config.vocab_size:
        raise UsageError(f"the data holds token id {int(windows.max())}, beyond the {what}'s vocabulary of "
                         f"{model.config.vocab_size}", "prepare the data with the model's tokenizer")
    return windows
