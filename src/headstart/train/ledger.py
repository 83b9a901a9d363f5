"""The compute ledger of a run: tokens seen, student FLOPs (forward + backward), teacher FLOPs (forward).

Runs are compared per token and per FLOP (the paper's v2 counts FLOPs so that distillation
pays for its teacher), so every run keeps this account and saves it in its checkpoints.
FLOPs per token come from headstart.subnet.counts.flops_per_token, the one count of the package.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Ledger:
    """What a run has spent so far, summed over all ranks."""

    tokens: int = 0  # predicted tokens the student trained on
    student_flops: float = 0.0  # forward + backward
    teacher_flops: float = 0.0  # teacher forwards run by this run
    cached_teacher_flops: float = 0.0  # teacher forwards whose top-k logits this run read from a logit cache

    def add(self, tokens: int, student_fpt: float, teacher_fpt: float, teacher_tokens: int,
            cached_tokens: int) -> None:
        """Account for one optimizer step: `tokens` trained on, of which the teacher ran on / was read for some."""
        self.tokens += tokens
        self.student_flops += 3 * student_fpt * tokens  # backward costs twice the forward
        self.teacher_flops += teacher_fpt * teacher_tokens
        self.cached_teacher_flops += teacher_fpt * cached_tokens

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Ledger:
        return cls(**d)
