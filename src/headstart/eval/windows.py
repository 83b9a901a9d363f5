"""The fixed token windows a model is scored on, checked against the model before any work."""

from __future__ import annotations

from pathlib import Path

import torch

from headstart.data import TokenWindows, check_tokenizer_matches, load_manifest, load_tokenizer
from headstart.errors import UsageError
from headstart.model.decoder import Decoder


def scoring_windows(model: Decoder, data_dir: str | Path, split: str, tokens: int, seq_len: int,
                    what: str = "model") -> torch.Tensor:
    """The first `tokens` tokens of a split as windows [n, seq+1], after checking the data fits `model`.

    Refuses data made with another tokenizer, and ids beyond the model's vocabulary; the window
    length is capped at the model's context.
    """
    manifest = load_manifest(data_dir)
    check_tokenizer_matches(manifest, load_tokenizer(model.source_dir), what=what)
    windows = TokenWindows(data_dir, split, min(seq_len, model.config.max_positions)).fixed_windows(tokens)
    if int(windows.max()) >= model.config.vocab_size:
        raise UsageError(f"the data holds token id {int(windows.max())}, beyond the {what}'s vocabulary of "
                         f"{model.config.vocab_size}", "prepare the data with the model's tokenizer")
    return windows
