"""The search's figures: the Pareto front, and the best result against the number of evaluations."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from headstart.figures import plt, save_figure

_COST_LABELS = {"params": "parameters", "flops": "forward FLOPs per token", "latency": "latency (s)"}


def _metric(record: dict[str, Any]) -> tuple[float, str]:
    ppl = record.get("perplexity")
    if ppl is not None and not math.isnan(ppl):
        return ppl, "validation perplexity (untrained)"
    return record["loss"], "objective (lower is better)"


def plot_pareto(records: list[dict[str, Any]], front: list[dict[str, Any]], cost: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    label = _metric(records[0])[1]
    ax.scatter([r["cost"] for r in records], [_metric(r)[0] for r in records], s=12, alpha=0.5, label="evaluated")
    ax.plot([r["cost"] for r in front], [_metric(r)[0] for r in front], "o-", color="C3", label="Pareto front")
    ax.set_xlabel(_COST_LABELS[cost])
    ax.set_ylabel(label)
    if all(_metric(r)[0] > 0 for r in records):
        ax.set_yscale("log")
    ax.legend()
    ax.set_title("sub-networks: quality against cost")
    save_figure(fig, path)


def plot_progress(records: list[dict[str, Any]], path: Path) -> None:
    best, curve = math.inf, []
    for r in records:
        best = min(best, _metric(r)[0])
        curve.append(best)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(range(1, len(curve) + 1), curve)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best " + _metric(records[0])[1])
    ax.set_title("search progress")
    save_figure(fig, path)
