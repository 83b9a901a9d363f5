"""Extract a sub-network into a standalone model, or into a Hugging Face folder.

Extraction is activation followed by a copy, so the extracted model computes exactly what
the activated sub-network computes; tests hold the two equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from headstart.atomic import atomic_dir
from headstart.model.checkpoint import build_model, save_model
from headstart.model.decoder import Decoder
from headstart.subnet.activate import activate
from headstart.subnet.spec import SubnetSpec

SPEC_FILE = "subnet.json"


def extract(teacher: Decoder, spec: SubnetSpec) -> Decoder:
    """A trainable `Decoder` holding its own contiguous copy of the sub-network's weights."""
    view = activate(teacher, spec)
    state = {k: v.clone(memory_format=torch.contiguous_format) for k, v in view.state_dict().items()}
    model = build_model(view.config, state, dtype=teacher.head_weight.dtype)
    model.source_dir = view.source_dir
    return model


def extract_to_folder(teacher: Decoder, spec: SubnetSpec, out_dir: str | Path, dtype: torch.dtype | None = None,
                      tokenizer_dir: Path | None = None, max_shard_size: int | str = "5GB") -> Path:
    """Write the sub-network as a Hugging Face folder, with the spec it came from in subnet.json.

    The folder appears whole or not at all. Uniform students use the teacher's stock class;
    layer-wise ones headstart's remote-code architecture (see `headstart.model.save_model`).
    """
    model = extract(teacher, spec)
    source = str(getattr(teacher, "source_dir", None) or "")
    card = {"teacher": source, "spec": spec.summary(), "parameters": sum(p.numel() for p in model.parameters()),
            "teacher_parameters": sum(p.numel() for p in teacher.parameters()),
            "training": "none yet (the extracted sub-network)"}
    with atomic_dir(out_dir) as tmp:
        save_model(model, tmp, tokenizer_dir=tokenizer_dir, dtype=dtype, card=card, max_shard_size=max_shard_size)
        record = {"teacher": source, "spec": spec.to_dict(teacher.config)}
        (tmp / SPEC_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return Path(out_dir)
