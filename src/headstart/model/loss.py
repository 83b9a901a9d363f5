"""Cross-entropy over a large vocabulary without materialising [tokens, vocab] logits at once."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def chunked_cross_entropy(hidden: torch.Tensor, head_weight: torch.Tensor, targets: torch.Tensor,
                          chunk_tokens: int = 1024) -> torch.Tensor:
    """Summed next-token loss of `hidden` [..., n_embd] projected by `head_weight` [vocab, n_embd].

    Logits are made `chunk_tokens` rows at a time, in fp32, so peak memory is chunk x vocab.
    Targets equal to -100 are ignored. Returns the sum; divide by the number of counted targets.
    """
    hidden = hidden.reshape(-1, hidden.shape[-1])
    targets = targets.reshape(-1)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.shape[0], chunk_tokens):
        logits = F.linear(hidden[start:start + chunk_tokens], head_weight).float()
        total = total + F.cross_entropy(logits, targets[start:start + chunk_tokens], reduction="sum",
                                        ignore_index=-100)
    return total
