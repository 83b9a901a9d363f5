"""Activate a sub-network on a loaded teacher: a `Decoder` whose weights are slices of the teacher's.

This is weight sharing: a prefix selection is a view (no copy), an index set is gathered with
`index_select` once, at activation time, which is cheap next to evaluating the candidate.
The teacher is never modified, so deactivating is just dropping the returned model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from headstart.model.checkpoint import build_model
from headstart.model.decoder import Decoder, parameter_dims
from headstart.subnet.spec import SubnetSpec, student_config, validate


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
    model_dims, block_dims = parameter_dims(cfg)
    top = {"vocab": None, "positions": None, "head": None, "E": tuple(embd)}  # None: the dim is never cut
    out = {name: _take(source[name], [top[d] for d in dims]) for name, dims in model_dims.items()}
    for j, (layer, heads, kv, mlp) in enumerate(layers):
        select = top | {"heads": _head_rows(heads, cfg.head_size), "kv": _head_rows(kv, cfg.head_size),
                        "mlp": tuple(mlp)}
        for name, dims in block_dims.items():
            out[f"blocks.{j}.{name}"] = _take(source[f"blocks.{layer}.{name}"], [select[d] for d in dims])
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
