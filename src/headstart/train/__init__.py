"""Pretraining a student, with cross-entropy alone or with distillation from a frozen teacher.

Public API: `TrainConfig` describes a run (headstart.settings.make builds one), `train` runs it
(one process, or every rank under torchrun); `chunked_losses`, `parse_kd_loss` and `KD_LOSSES`
are the losses, `LogitCache` the teacher-logit cache, `Ledger` the compute account.

Names are imported on first use: the CLI reads TrainConfig's fields for its flags without
paying for torch.distributed, which the loop needs.
"""

import importlib

_HOMES = {
    "TrainConfig": "config",
    "Ledger": "ledger", "LogitCache": "logit_cache", "train": "loop",
    "KD_LOSSES": "losses", "KDLoss": "losses", "chunked_losses": "losses", "parse_kd_loss": "losses",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"headstart.train.{_HOMES[name]}"), name)
