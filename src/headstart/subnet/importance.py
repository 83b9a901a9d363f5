"""How much each unit of a teacher matters, and a re-ordered teacher whose prefixes are its best units.

Activation importance (Minitron-style) comes from one batched pass over calibration tokens,
with forward hooks and no gradients:
- embedding channel: mean |x| of the channel in the output of every norm (each block's two and
  the final one), summed over the norms;
- query head: mean L2 norm of the head's attention output (the input of the output projection);
  a key/value group scores the sum of its query heads;
- MLP neuron: mean |activation| entering the down projection;
- layer: mean (1 - cosine) between the block's input and output, i.e. how much it changes the
  residual stream (ShortGPT's block influence).
Magnitude importance, for comparison, is the L2 norm of the weights each unit reads and writes.

`permute_teacher` re-orders channels, groups, heads within groups and neurons by descending
score. The function is unchanged (tested), so coarse (first-n) slicing of the permuted teacher
keeps the most important units, and every later step can stay with cheap prefix slices.
Layers cannot be re-ordered without changing the function; `top_layers` picks them instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from headstart.model.checkpoint import build_model
from headstart.model.decoder import Decoder, DecoderConfig
from headstart.progress import progress_bar
from headstart.subnet.activate import gather_state
from headstart.subnet.spec import LayerSpec, SubnetSpec

ORDERS = ("activation", "magnitude")  # the methods below, by the name an Importance carries


@dataclass
class Importance:
    """A score per unit of one teacher; higher means more important."""

    method: str  # one of ORDERS
    embd: torch.Tensor  # [n_embd]
    heads: list[torch.Tensor]  # per layer [n_head]
    mlp: list[torch.Tensor]  # per layer [mlp]
    layers: torch.Tensor  # [n_layer]

    def groups(self, config: DecoderConfig, layer: int) -> torch.Tensor:
        """Key/value group scores of one layer: the sum over the group's query heads."""
        return self.heads[layer].view(config.layers[layer].n_kv, -1).sum(1)

    def to_dict(self, config: DecoderConfig) -> dict[str, Any]:
        return {"method": self.method, "embd": self.embd.tolist(), "layers": self.layers.tolist(),
                "kv": [self.groups(config, i).tolist() for i in range(config.n_layer)],
                "heads": [h.tolist() for h in self.heads], "mlp": [m.tolist() for m in self.mlp]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Importance:
        t = torch.tensor
        return cls(method=data["method"], embd=t(data["embd"]), heads=[t(h) for h in data["heads"]],
                   mlp=[t(m) for m in data["mlp"]], layers=t(data["layers"]))


@torch.inference_mode()
def activation_importance(teacher: Decoder, windows: torch.Tensor, batch_size: int = 8,
                          progress: bool = False) -> Importance:
    """Scores from the teacher's activations on `windows` [n, seq(+1)], one forward pass per batch."""
    cfg = teacher.config
    device = teacher.head_weight.device
    acc = {"embd": torch.zeros(cfg.n_embd, dtype=torch.float64, device=device),
           "layers": torch.zeros(cfg.n_layer, dtype=torch.float64, device=device),
           "heads": [torch.zeros(s.n_head, dtype=torch.float64, device=device) for s in cfg.layers],
           "mlp": [torch.zeros(s.mlp, dtype=torch.float64, device=device) for s in cfg.layers]}

    def on_norm(_module, _args, out):
        acc["embd"] += out.abs().sum((0, 1)).double()

    def on_block(i):
        def hook(_module, args, out):
            acc["layers"][i] += (1 - F.cosine_similarity(args[0].float(), out.float(), dim=-1)).sum().double()
        return hook

    def on_heads(i):
        def hook(_module, args):
            x = args[0]
            acc["heads"][i] += x.reshape(*x.shape[:2], cfg.layers[i].n_head, cfg.head_size).float().norm(
                dim=-1).sum((0, 1)).double()
        return hook

    def on_mlp(i):
        def hook(_module, args):
            acc["mlp"][i] += args[0].abs().sum((0, 1)).double()
        return hook

    handles = [teacher.final_norm.register_forward_hook(on_norm)]
    for i, block in enumerate(teacher.blocks):
        handles += [block.attn_norm.register_forward_hook(on_norm), block.mlp_norm.register_forward_hook(on_norm),
                    block.register_forward_hook(on_block(i)), block.attn.o.register_forward_pre_hook(on_heads(i)),
                    block.mlp.down.register_forward_pre_hook(on_mlp(i))]
    was_training = teacher.training
    teacher.eval()
    tokens = 0
    try:
        for start in progress_bar(range(0, windows.shape[0], batch_size), desc="importance", unit="batch",
                                  active=progress, leave=False):
            batch = windows[start:start + batch_size, :-1].to(device)
            teacher.hidden_states(batch)
            tokens += batch.numel()
    finally:
        for h in handles:
            h.remove()
        teacher.train(was_training)
    n = max(tokens, 1)
    return Importance(method="activation", embd=(acc["embd"] / n).float().cpu(),
                      heads=[(h / n).float().cpu() for h in acc["heads"]],
                      mlp=[(m / n).float().cpu() for m in acc["mlp"]], layers=(acc["layers"] / n).float().cpu())


@torch.no_grad()
def magnitude_importance(teacher: Decoder) -> Importance:
    """Scores from weight norms alone: each unit's rows and columns in every matrix it touches."""
    cfg = teacher.config
    hs = cfg.head_size
    embd = teacher.embed.weight.float().pow(2).sum(0)
    if teacher.lm_head is not None:
        embd += teacher.lm_head.weight.float().pow(2).sum(0)
    heads, mlp, layers = [], [], []
    for block, shape in zip(teacher.blocks, cfg.layers, strict=True):
        attn, ff = block.attn, block.mlp
        reads = [attn.q, attn.k, attn.v, ff.up] + ([ff.gate] if ff.gate is not None else [])
        for lin in reads:
            embd += lin.weight.float().pow(2).sum(0)
        for lin in (attn.o, ff.down):
            embd += lin.weight.float().pow(2).sum(1)
        q_rows = attn.q.weight.float().pow(2).sum(1).view(shape.n_head, hs).sum(1)
        o_cols = attn.o.weight.float().pow(2).sum(0).view(shape.n_head, hs).sum(1)
        heads.append((q_rows + o_cols).sqrt())
        neuron = ff.up.weight.float().pow(2).sum(1) + ff.down.weight.float().pow(2).sum(0)
        if ff.gate is not None:
            neuron += ff.gate.weight.float().pow(2).sum(1)
        mlp.append(neuron.sqrt())
        layers.append((attn.o.weight.float().pow(2).sum() + ff.down.weight.float().pow(2).sum()).sqrt())
    return Importance(method="magnitude", embd=embd.sqrt().cpu(), heads=[h.cpu() for h in heads],
                      mlp=[m.cpu() for m in mlp], layers=torch.stack(layers).cpu())


def _descending(scores: torch.Tensor) -> list[int]:
    return torch.sort(scores, descending=True, stable=True).indices.tolist()


def _ranked_layer(config: DecoderConfig, scores: Importance,
                  layer: int) -> tuple[list[int], list[list[int]], list[int]]:
    """(groups by score, per group its head positions by score, neurons by score) of one teacher layer."""
    shape = config.layers[layer]
    q = shape.n_head // shape.n_kv
    per_head = scores.heads[layer].view(shape.n_kv, q)
    return (_descending(scores.groups(config, layer)), [_descending(per_head[g]) for g in range(shape.n_kv)],
            _descending(scores.mlp[layer]))


def permute_teacher(teacher: Decoder, scores: Importance) -> Decoder:
    """A copy of `teacher` with every unit kind sorted by descending score; same function, new order."""
    cfg = teacher.config
    layers = []
    for i, shape in enumerate(cfg.layers):
        q = shape.n_head // shape.n_kv
        groups, heads, mlp = _ranked_layer(cfg, scores, i)
        layers.append((i, [g * q + p for g in groups for p in heads[g]], groups, mlp))
    state = gather_state(teacher, _descending(scores.embd), layers)
    model = build_model(cfg, {k: v.clone(memory_format=torch.contiguous_format) for k, v in state.items()},
                        dtype=teacher.head_weight.dtype)
    model.source_dir = getattr(teacher, "source_dir", None)
    return model


def top_layers(scores: Importance, k: int) -> tuple[int, ...]:
    """The k layers that change the residual stream most, in teacher order."""
    return tuple(sorted(_descending(scores.layers)[:k]))


def importance_spec(config: DecoderConfig, scores: Importance, widths: SubnetSpec,
                    layers: Sequence[int] | None = None) -> SubnetSpec:
    """A fine-grained spec with the widths of `widths` that keeps the highest-scoring units.

    Kept layers are `layers` (default: those of `widths`); the j-th kept layer takes the widths
    of `widths`' j-th. Heads follow the coarse rule on ranked units: the best g groups, and
    in each the best m heads. On the permuted teacher, the coarse spec of the same widths is
    the same function.
    """
    layers = list(layers) if layers is not None else [s.layer for s in widths.layers]
    if len(layers) != len(widths.layers):
        raise ValueError(f"{len(layers)} layers for {len(widths.layers)} layer widths")
    kept = []
    for layer, like in zip(layers, widths.layers, strict=True):
        q = config.layers[layer].n_head // config.layers[layer].n_kv
        groups, heads, mlp = _ranked_layer(config, scores, layer)
        g, m = len(like.kv), len(like.heads) // len(like.kv)
        kv = sorted(groups[:g])
        kept.append(LayerSpec(layer=layer, heads=tuple(sorted(x * q + p for x in kv for p in heads[x][:m])),
                              kv=tuple(kv), mlp=tuple(sorted(mlp[:len(like.mlp)]))))
    return SubnetSpec(embd=tuple(sorted(_descending(scores.embd)[:widths.n_embd])), layers=tuple(kept))
