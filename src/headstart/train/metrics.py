"""Metrics of a run: one JSON line per record in OUT/metrics.jsonl, and the same scalars in TensorBoard.

A resumed run first cuts both back to the checkpoint's step, so the curves of a run that was
killed and resumed are those of a run that never stopped: no step appears twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from headstart.atomic import write_text_atomic


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl; a line cut short by a kill is dropped."""
    records = []
    path = Path(path)
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class MetricsLog:
    """Appends records (each with a `step`) to metrics.jsonl and TensorBoard; inactive on ranks other than 0."""

    def __init__(self, out: str | Path, active: bool, resume_step: int | None) -> None:
        self.path = Path(out) / "metrics.jsonl"
        self.active = active
        self.writer = None
        if not active:
            return
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step] if resume_step is not None \
            else []
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        from torch.utils.tensorboard import SummaryWriter  # lazy: tensorboard is slow to import

        purge = resume_step + 1 if resume_step is not None else None
        self.writer = SummaryWriter(str(Path(out) / "tensorboard"), purge_step=purge)

    def log(self, record: dict[str, Any]) -> None:
        if not self.active:
            return
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        for name, value in record.items():
            if name != "step" and isinstance(value, int | float):
                self.writer.add_scalar(name, value, record["step"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
