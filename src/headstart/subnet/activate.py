"""Activate a sub-network on a loaded teacher: a `Decoder` whose weights are slices of the teacher's.

This is weight sharing: a prefix selection is a view (no copy), an index set is gathered with
`index_select` once, at activation time, which is cheap next to evaluating the candidate.
The teacher is never modified, so deactivating is just dropping the returned model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from headstart.model.checkpoint import build_model
from headstart.model.decoder import Decoder
from headstart.subnet.spec import SubnetSpec, student_config, validate

# per module of a block: which selection indexes each dimension of its weight ("E" = embedding
# channels, "heads"/"kv" = rows of the kept heads/groups, "mlp" = neurons); a bias takes dim 0's.
_BLOCK_DIMS: dict[str, tuple[str, ...]] = {
    "attn_norm": ("E",), "mlp_norm": ("E",),
    "attn.q": ("heads", "E"), "attn.k": ("kv", "E"), "attn.v": ("kv", "E"), "attn.o": ("E", "heads"),
    "mlp.up": ("mlp", "E"), "mlp.gate": ("mlp", "E"), "mlp.down": ("E", "mlp"),
}


def activate(teacher: Decoder, spec: SubnetSpec) -> Decoder:
    """The sub-network `spec` of `teacher`, for evaluation: parameters share the teacher's memory.

    Its parameters do not require grad (an optimizer step would write into the teacher);
    train on `extract(teacher, spec)` instead.
    """
    validate(spec, teacher.config)
    layers = [(s.layer, s.heads, s.kv, s.mlp) for s in spec.layers]
    model = build_model(student_config(teacher.config, spec), gather_state(teacher, spec.embd, layers),
                        dtype=teacher.head_weight.dtype)
    model.requires_grad_(False)
    model.source_dir = getattr(teacher, "source_dir", None)
    return model


def gather_state(teacher: Decoder, embd: Sequence[int],
                 layers: Sequence[tuple[int, Sequence[int], Sequence[int], Sequence[int]]]) -> dict[str, torch.Tensor]:
    """The student's state dict, taking teacher units in the given order.

    `layers` holds (teacher layer, query heads, key/value groups, MLP neurons) per student layer.
    Sorted subsets give a sub-network; permutations of everything give a re-ordered teacher.
    """
    cfg = teacher.config
    source = {name: p.detach() for name, p in teacher.named_parameters()}
    embd = tuple(embd)
    out: dict[str, torch.Tensor] = {}
    for name in ("embed.weight", "pos_embed.weight", "lm_head.weight"):
        if name in source:
            out[name] = _take(source[name], (None, embd))
    for kind in ("weight", "bias"):
        if f"final_norm.{kind}" in source:
            out[f"final_norm.{kind}"] = _take(source[f"final_norm.{kind}"], (embd,))
    for j, (layer, heads, kv, mlp) in enumerate(layers):
        select = {"E": embd, "heads": _head_rows(heads, cfg.head_size), "kv": _head_rows(kv, cfg.head_size),
                  "mlp": tuple(mlp)}
        for module, dims in _BLOCK_DIMS.items():
            for kind in ("weight", "bias"):
                name = f"blocks.{layer}.{module}.{kind}"
                if name in source:
                    index = [select[d] for d in dims] if kind == "weight" else [select[dims[0]]]
                    out[f"blocks.{j}.{module}.{kind}"] = _take(source[name], index)
    return out


def _head_rows(heads: Sequence[int], head_size: int) -> tuple[int, ...]:
    """Weight rows of the given heads (or key/value groups): head h owns rows h*head_size ... +head_size-1."""
    return tuple(h * head_size + r for h in heads for r in range(head_size))


def _take(tensor: torch.Tensor, index: Sequence[tuple[int, ...] | None]) -> torch.Tensor:
    """Select `index[d]` along each dim d (None keeps it all): a view for prefixes, a gather otherwise."""
    for dim, idx in enumerate(index):
        if idx is None or idx == tuple(range(tensor.shape[dim])):
            continue
        if idx == tuple(range(len(idx))):
            tensor = tensor.narrow(dim, 0, len(idx))
        else:
            tensor = tensor.index_select(dim, torch.tensor(idx, dtype=torch.long, device=tensor.device))
    return tensor
