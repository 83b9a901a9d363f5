"""What a search minimises: the loss of the untrained sub-network, or a cheap proxy for comparison.

The paper's objective is the validation perplexity of the activated (untrained) sub-network on
a fixed set of tokens: the same tokens for every candidate. Proxies (summed importance or
weight magnitude of the kept units) cost no forward pass; the paper found optimising
perplexity directly works better, and `bench/search.py` checks that here.
"""

from __future__ import annotations

import torch

from headstart.eval import evaluate_windows
from headstart.model.decoder import Decoder, DecoderConfig
from headstart.runtime import compute_autocast
from headstart.subnet import SubnetSpec, activate
from headstart.subnet.importance import Importance


class PerplexityObjective:
    """Mean next-token loss of the activated sub-network on fixed windows [n, seq+1].

    `precision` auto evaluates in bf16 autocast on a GPU (in fp32 on a CPU): tests/test_train_scale.py
    holds the bf16 perplexity of a trained model within 1% of the fp32 one.
    """

    name = "perplexity"

    def __init__(self, teacher: Decoder, windows: torch.Tensor, batch_size: int = 8, precision: str = "auto") -> None:
        self.teacher, self.windows, self.batch_size, self.precision = teacher, windows, batch_size, precision

    def __call__(self, spec: SubnetSpec) -> dict[str, float]:
        with compute_autocast(next(self.teacher.parameters()).device, self.precision):
            result = evaluate_windows(activate(self.teacher, spec), self.windows, self.batch_size)
        return {"loss": result.loss, "perplexity": result.perplexity}


class ProxyObjective:
    """Minus the share of importance the sub-network keeps, averaged over unit kinds (0 = keeps all).

    Kinds: embedding channels, layers, query heads and MLP neurons (the last two summed over the
    kept layers, relative to the whole teacher). `scores` come from activations or from weight
    magnitudes (`headstart.subnet.importance`).
    """

    def __init__(self, config: DecoderConfig, scores: Importance) -> None:
        self.name = f"{scores.method}-proxy"
        self.scores = scores
        self.totals = {"embd": scores.embd.sum().item(), "layers": scores.layers.sum().item(),
                       "heads": sum(h.sum().item() for h in scores.heads),
                       "mlp": sum(m.sum().item() for m in scores.mlp)}

    def __call__(self, spec: SubnetSpec) -> dict[str, float]:
        s = self.scores
        kept = {"embd": s.embd[list(spec.embd)].sum().item(),
                "layers": s.layers[[x.layer for x in spec.layers]].sum().item(),
                "heads": sum(s.heads[x.layer][list(x.heads)].sum().item() for x in spec.layers),
                "mlp": sum(s.mlp[x.layer][list(x.mlp)].sum().item() for x in spec.layers)}
        shares = [kept[k] / self.totals[k] for k in kept if self.totals[k] > 0]
        loss = -sum(shares) / len(shares)
        return {"loss": loss}
