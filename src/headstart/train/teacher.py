"""The teacher's side of a training step: run the teacher now, read its top-k logits from the cache, or both.

Per step, `begin_step` looks the rank's rows up in the logit cache; `signal` then gives each
micro-batch its teacher view (cached, or from a frozen no-grad forward); `end_step` writes
what was computed into the cache, so later students need not run the teacher again.
"""

from __future__ import annotations

import torch
from torch import nn

from headstart.errors import UsageError
from headstart.train.logit_cache import LogitCache
from headstart.train.losses import KDLoss, TeacherHidden, TeacherSignal, TeacherTopK, teacher_topk


def missing_logits(cache: LogitCache, step: int) -> UsageError:
    return UsageError(f"logit cache {cache.root} has no teacher logits for step {step}",
                      "add --teacher T to compute (and cache) the missing ones, or lower --tokens")


class Teacher:
    def __init__(self, module: nn.Module | None, kd: KDLoss, cache: LogitCache | None, chunk_tokens: int) -> None:
        self.module = module  # HiddenAndHead (maybe sharded), frozen, eval mode; None when reading the cache only
        self.kd = kd
        self.cache = cache
        self.chunk_tokens = chunk_tokens
        self._step, self._first_row, self._windows = 0, 0, torch.empty(0, dtype=torch.long)
        self._cached: TeacherTopK | None = None
        self._computed: list[TeacherTopK] = []

    def begin_step(self, step: int, first_row: int, windows: torch.Tensor) -> bool:
        """Look up this rank's rows of global batch `step`; True when they come from the cache."""
        self._step, self._first_row, self._windows = step, first_row, windows
        self._cached = self.cache.read(step, first_row, windows) if self.cache is not None else None
        self._computed = []
        if self._cached is None and self.module is None:
            raise missing_logits(self.cache, step)
        return self._cached is not None

    @torch.no_grad()
    def signal(self, rows: slice, inputs: torch.Tensor) -> TeacherSignal:
        """The teacher's view of micro-batch `inputs` [b, seq], rows `rows` of this rank's part of the step."""
        if self._cached is not None:
            cached = self._cached
            return TeacherTopK(cached.values[rows].to(inputs.device), cached.indices[rows].to(inputs.device))
        hidden, head = self.module(inputs)
        if self.kd.top_k is None:
            return TeacherHidden(hidden, head)
        topk = teacher_topk(hidden, head, self.cache.stored_k if self.cache else self.kd.top_k, self.chunk_tokens)
        self._computed.append(topk)
        return topk

    def end_step(self) -> None:
        """Write the top-k computed in this step to the cache (when there is one and it lacked them)."""
        if self.cache is not None and self._computed:
            self.cache.write(self._step, self._first_row, self._windows,
                             TeacherTopK(torch.cat([t.values for t in self._computed]),
                                         torch.cat([t.indices for t in self._computed])))
        self._computed = []
