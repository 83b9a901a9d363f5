"""The training figure: loss against tokens for one or more runs, beside reference levels."""

from __future__ import annotations

from pathlib import Path

from headstart.figures import plt, save_figure
from headstart.train.metrics import read_metrics

Points = list[tuple[int, float]]


def training_curves(run_dir: str | Path) -> tuple[Points, Points]:
    """(tokens, training cross-entropy) and (tokens, validation loss) of a run's metrics.jsonl.

    Cross-entropy, not the objective: with distillation the objective is a divergence from the
    teacher, which does not compare with a validation loss.
    """
    records = read_metrics(Path(run_dir) / "metrics.jsonl")
    train = [(r["tokens"], r.get("ce", r["loss"])) for r in records if "loss" in r]
    tokens_at = {r["step"]: r["tokens"] for r in records if "loss" in r}
    val = [(r["tokens"] if "tokens" in r else tokens_at[r["step"]], r["val_loss"]) for r in records
           if "val_loss" in r and ("tokens" in r or r["step"] in tokens_at)]
    return train, val


def plot_training(runs: dict[str, str | Path], path: Path, references: dict[str, float] | None = None,
                  title: str = "") -> None:
    """Each run's training cross-entropy (thin) and validation loss (markers); references as dashed levels."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (label, run_dir) in enumerate(runs.items()):
        train, val = training_curves(run_dir)
        val = [(tokens, loss) for tokens, loss in val if tokens > 0]  # step 0 has no place on a log axis
        if train:
            ax.plot(*zip(*train, strict=True), lw=0.8, alpha=0.6, color=f"C{i}", label=f"{label}, training")
        if val:
            ax.plot(*zip(*val, strict=True), "o-", ms=3, color=f"C{i}", label=f"{label}, validation")
    for j, (label, loss) in enumerate((references or {}).items()):
        ax.axhline(loss, ls="--", lw=1, color=f"C{len(runs) + j}", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("tokens")
    ax.set_ylabel("cross-entropy (nats)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    save_figure(fig, path)
