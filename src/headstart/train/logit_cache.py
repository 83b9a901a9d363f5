"""A teacher-logit cache: top-k logits of the teacher, written once, read by any number of students.

Layout of the folder:
    cache.json                                   what the logits belong to (teacher, tokenizer, k, data order)
    step-00000012-rows-00000-00016.safetensors   rows [0, 16) of global batch 12:
        values  [rows, seq, k] fp32   the teacher's k largest logits per token, descending
        indices [rows, seq, k] int32  their vocabulary ids
        hashes  [rows, 32] uint8      sha256 of each window's tokens

Each rank writes the rows it holds, and a reader finds its rows in whichever shards hold them,
so a cache written by one number of ranks serves any other. Every window's hash is checked on
read: logits for other tokens (other data, order or settings) are a UsageError, never used.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from headstart.atomic import atomic_path, write_json_atomic
from headstart.errors import UsageError
from headstart.train.losses import TeacherTopK

FORMAT = 1
META = "cache.json"
_SHARD = re.compile(r"step-(\d+)-rows-(\d+)-(\d+)\.safetensors")
_FIX = "point --logit-cache at a cache written for this run's teacher, data, seq-len, batch size and seed, " \
       "or at a new folder"


def window_hashes(windows: torch.Tensor) -> torch.Tensor:
    """sha256 of each window's token ids [rows, 32]: the key that ties logits to their tokens."""
    rows = windows.to(torch.int64).cpu().numpy()
    return torch.tensor([list(hashlib.sha256(row.tobytes()).digest()) for row in rows], dtype=torch.uint8)


class LogitCache:
    """Top-k teacher logits keyed to (global step, row) and verified against each window's tokens."""

    def __init__(self, root: Path, key: dict[str, Any]) -> None:
        self.root = root
        self.key = key
        self.stored_k: int = key["top_k"]  # k of every shard, which may exceed the k a run reads
        self.teacher: dict[str, Any] = key["teacher"]  # the config and weights fingerprint of the teacher

    @classmethod
    def open(cls, root: str | Path, key: dict[str, Any], writable: bool) -> LogitCache:
        """Open a cache (a new one when `writable`); an existing cache.json must match `key` field by field.

        `key` holds everything the logits of a (step, row) depend on except the tokens, which each
        shard's hashes cover: the teacher, the tokenizer, the data order, seq_len and k (a cache
        of a larger k serves a smaller one). A new cache writes nothing until its first shard, so
        a run refused later leaves no folder behind.
        """
        root = Path(root)
        meta_path = root / META
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise UsageError(f"logit cache {meta_path} is corrupt", _FIX) from None
            if meta.get("format") != FORMAT:
                raise UsageError(f"logit cache {root} has format {meta.get('format')}, this headstart reads {FORMAT}",
                                 _FIX)
            for name, value in key.items():
                if name not in meta["key"]:
                    raise UsageError(f"logit cache {root} does not record {name}", _FIX)
                if meta["key"][name] != value and not (name == "top_k" and meta["key"][name] >= value):
                    raise UsageError(f"logit cache {root} was written with {name}={_short(meta['key'][name])}, "
                                     f"this run has {name}={_short(value)}", _FIX)
            return cls(root, meta["key"])
        if not writable:
            raise UsageError(f"{root} is not a logit cache (no {META})",
                             "fill it first: train once with --teacher T --logit-cache DIR")
        if root.exists() and any(root.iterdir()):
            raise UsageError(f"--logit-cache {root} exists and is not a logit cache", "choose a new folder")
        return cls(root, key)

    def _shards(self, step: int) -> list[tuple[int, int, Path]]:
        found = []
        for path in self.root.glob(f"step-{step:08d}-rows-*.safetensors"):
            match = _SHARD.fullmatch(path.name)
            if match:
                found.append((int(match.group(2)), int(match.group(3)), path))
        return sorted(found)

    def first_missing_step(self, total_steps: int) -> int | None:
        """The first of steps 0..total_steps-1 without any shard (a reader without a teacher cannot go past it)."""
        names = (p.name for p in self.root.glob("step-*.safetensors"))
        present = {int(m.group(1)) for m in map(_SHARD.fullmatch, names) if m}
        return next((step for step in range(total_steps) if step not in present), None)

    def read(self, step: int, first_row: int, windows: torch.Tensor) -> TeacherTopK | None:
        """The cached top-k of global batch `step`, rows first_row.., for these `windows`; None if not cached."""
        wanted = range(first_row, first_row + windows.shape[0])
        pieces, row = [], wanted.start
        for start, end, path in self._shards(step):
            if start <= row < end:
                take = min(end, wanted.stop)
                pieces.append(self._read_rows(path, row - start, take - start))
                row = take
            if row == wanted.stop:
                break
        if row != wanted.stop:
            return None
        hashes = torch.cat([p[2] for p in pieces])
        mismatch = (hashes != window_hashes(windows)).any(dim=1).nonzero()
        if len(mismatch):
            raise UsageError(f"logit cache {self.root}: the logits of step {step}, row {first_row + int(mismatch[0])} "
                             f"belong to other tokens than this run's window", _FIX)
        return TeacherTopK(torch.cat([p[0] for p in pieces]), torch.cat([p[1] for p in pieces]))

    def _read_rows(self, path: Path, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        try:
            with safe_open(path, framework="pt") as f:
                return tuple(f.get_slice(name)[start:end] for name in ("values", "indices", "hashes"))
        except (SafetensorError, OSError, ValueError) as err:
            raise UsageError(f"logit cache shard {path} is corrupt ({str(err).splitlines()[0][:80]})",
                             "delete it; a run with --teacher writes it again") from None

    def write(self, step: int, first_row: int, windows: torch.Tensor, topk: TeacherTopK) -> None:
        """Store the top-k of rows first_row.. of global batch `step` (atomically: a shard is whole or absent)."""
        if topk.values.shape[-1] != self.stored_k:
            raise ValueError(f"this cache stores k={self.stored_k}, got {topk.values.shape[-1]}")
        name = f"step-{step:08d}-rows-{first_row:05d}-{first_row + windows.shape[0]:05d}.safetensors"
        tensors = {"values": topk.values.float().contiguous().cpu(),
                   "indices": topk.indices.to(torch.int32).contiguous().cpu(),
                   "hashes": window_hashes(windows)}
        if not (self.root / META).is_file():  # every rank may get here first: same content, atomic rename
            write_json_atomic(self.root / META, {"format": FORMAT, "key": self.key})
        with atomic_path(self.root / name) as tmp:
            save_file(tensors, tmp)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."
