"""The comparison of arms: which learning rate each kept, its final perplexity, and the tokens and FLOPs
it needs to reach the reference arm's final perplexity (as a table, JSON, and two figures)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headstart.compare.crossing import Crossing, CurvePoint, first_crossing, last_doubling, read_curve


@dataclass(frozen=True)
class ArmRuns:
    """One arm as trained: its runs (one per learning rate of a sweep), each a training folder."""

    name: str
    label: str
    params: int
    runs: dict[str, Path]  # learning rate (as written in the recipe) -> training run folder
    sweep: dict[str, float] | None = None  # a sweep at a shorter budget: rate -> its final perplexity there
    sweep_tokens: int | None = None
    count_cache: bool = True  # False: the teacher forwards read from a logit cache are counted where it was filled
    spent_before: tuple[int, float] = (0, 0.0)  # tokens and FLOPs spent choosing it (a selection's), charged

    def curves(self) -> dict[str, list[CurvePoint]]:
        tokens, flops = self.spent_before
        return {lr: [CurvePoint(p.step, p.tokens + tokens, p.flops + flops, p.perplexity)
                     for p in read_curve(folder, self.count_cache)] for lr, folder in self.runs.items()}


def _final(curve: list[CurvePoint]) -> float:
    return curve[-1].perplexity if curve else math.inf


def compare(arms: list[ArmRuns], reference: str, target: float | None = None) -> dict[str, Any]:
    """Per arm: the sweep, the kept run (best final perplexity), and the race to the reference's final perplexity
    (or to `target`, where the reference's ratios are from its first reaching it)."""
    kept = {}
    for arm in arms:
        curves = arm.curves()
        best = min(curves, key=lambda lr: _final(curves[lr]))
        kept[arm.name] = (arm, best, curves)
    ref = kept.get(reference)
    ref_curve = ref[2][ref[1]] if ref else []
    target = target if target is not None or not ref_curve else _final(ref_curve)
    # the race's finish line is where the reference first reached the target (a curve that dips below its final
    # perplexity and ends above it got there before its last point): its own row is then 1.00x
    ref_end = first_crossing(ref_curve, target) if target is not None else Crossing(None, None)
    result: dict[str, Any] = {"reference": reference if ref else None, "target_perplexity": target, "arms": {}}
    for name, (arm, best, curves) in kept.items():
        curve = curves[best]
        summary = arm.runs[best] / "summary.json"
        stopped = summary.is_file() and json.loads(summary.read_text()).get("stopped_at") is not None
        row: dict[str, Any] = {
            "label": arm.label, "params": arm.params, "lr": best, "run": str(arm.runs[best]),
            "sweep": arm.sweep or ({lr: _final(c) for lr, c in curves.items()} if len(curves) > 1 else None),
            "sweep_tokens": arm.sweep_tokens,
            "perplexity_untrained": curve[0].perplexity if curve and curve[0].step == 0 else None,
            "perplexity": _final(curve), "stopped": stopped, "tokens": curve[-1].tokens if curve else 0,
            "flops": curve[-1].flops if curve else 0.0,
            "curve": [[p.tokens, p.flops, p.perplexity] for p in curve],
            "last_doubling": last_doubling(curve),
        }
        if target is not None:
            crossing = first_crossing(curve, target)
            row["to_reference"] = {
                "tokens": crossing.tokens, "flops": crossing.flops, "bound": crossing.bound,
                "tokens_ratio": _ratio(ref_end.tokens, crossing.tokens),
                "flops_ratio": _ratio(ref_end.flops, crossing.flops),
            }
        result["arms"][name] = row
    return result


def race_to_teacher(arms: list[ArmRuns], comparison: dict[str, Any], teacher: float) -> dict[str, Any] | None:
    """The comparison again, raced to the teacher's perplexity, where the reference arm ended below it: a student
    distilled from that teacher (perplexity `teacher`) is pulled toward it and may never reach the reference's.
    None where the reference ended at or above the teacher (the race to it says it all)."""
    target = comparison["target_perplexity"]
    if comparison["reference"] is None or target is None or target >= teacher:
        return None
    return compare(arms, comparison["reference"], teacher)


def teacher_race_section(to_teacher: dict[str, Any] | None) -> str:
    """What race_to_teacher found, as a report's paragraph and table (nothing where there was no such race)."""
    if not to_teacher:
        return ""
    return (f"\nThe from-scratch arm ended below the teacher's perplexity, {to_teacher['target_perplexity']:.2f}: "
            "distillation pulls a student toward the teacher, so a distilled arm may never reach the from-scratch "
            f"arm's. The same arms raced to the teacher's perplexity:\n\n{comparison_table(to_teacher)}\n")


def _ratio(reference: float | None, needed: float | None) -> float | None:
    if reference is None or needed is None:
        return None
    return math.inf if needed <= 0 else reference / needed


def _count(x: float | None) -> str:
    if x is None:
        return "not reached"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def _times(ratio: float | None, bound: bool) -> str:
    if ratio is None:
        return "-"
    if math.isinf(ratio):
        return "∞ (at step 0)"
    return f"{'≥ ' if bound else ''}{ratio:.2f}x"


def comparison_table(result: dict[str, Any]) -> str:
    """The Markdown table of the arms; the race columns only where there is a reference arm."""
    target = result["target_perplexity"]
    race = target is not None
    head = "| arm | parameters | lr | perplexity | " + (
        f"tokens to {target:.2f} | fewer tokens | FLOPs to {target:.2f} | fewer FLOPs |" if race else "")
    lines = [head, "|" + "---|" * (4 + 4 * race)]
    for row in result["arms"].values():
        stopped = " (stopped)" if row.get("stopped") else ""
        cells = [row["label"], f"{row['params'] / 1e6:.2f}M", f"{float(row['lr']):g}",
                 f"{row['perplexity']:.2f}{stopped}"]
        if race:
            r = row["to_reference"]
            bound = "≤ " if r["bound"] else ""
            cells += [bound + _count(r["tokens"]) if r["tokens"] is not None else "not reached",
                      _times(r["tokens_ratio"], r["bound"]),
                      bound + _count(r["flops"]) if r["flops"] is not None else "not reached",
                      _times(r["flops_ratio"], r["bound"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_lines(result: dict[str, Any]) -> str:
    """One line per swept arm: each rate's final perplexity, and which was kept; and how far from its
    plateau the reference arm ended (what its last doubling of tokens still gained)."""
    lines = []
    reference = result["arms"].get(result["reference"] or "")
    if reference and reference.get("last_doubling") is not None:
        lines.append(f"- {reference['label']}: its last doubling of tokens (to {reference['tokens']:,}) lowered "
                     f"perplexity by {100 * reference['last_doubling']:.1f}% (how far from its plateau it ended).")
    for row in result["arms"].values():
        if row["sweep"]:
            rates = ", ".join(f"{float(lr):g}: {ppl:.2f}" for lr, ppl in row["sweep"].items())
            budget = f" at {row['sweep_tokens']:,} tokens" if row.get("sweep_tokens") else ""
            then = ", then trained at the full budget" if row.get("sweep_tokens") else ""
            lines.append(f"- {row['label']}: learning rate swept{budget} ({rates}); kept {float(row['lr']):g}, the "
                         f"best final perplexity{then}.")
    return "\n".join(lines)


def plot_comparison(result: dict[str, Any], out_dir: Path, teacher_perplexity: float | None = None) -> list[Path]:
    """comparison_tokens.png and comparison_flops.png: every arm's validation perplexity on one plot."""
    from headstart.figures import plt, save_figure  # lazy: matplotlib

    paths = []
    for column, name, xlabel in ((0, "tokens", "training tokens"), (1, "flops", "training FLOPs (teacher counted)")):
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        positive = [p[column] for row in result["arms"].values() for p in row["curve"] if p[column] > 0]
        for i, row in enumerate(result["arms"].values()):
            xs, ys = [p[column] for p in row["curve"]], [p[2] for p in row["curve"]]
            ax.plot(xs, ys, "o-", ms=3, lw=1.2, color=f"C{i}", label=f"{row['label']} (lr {float(row['lr']):g})")
        if result["target_perplexity"] is not None:
            ax.axhline(result["target_perplexity"], ls="--", lw=1, color="gray", label="from-scratch final")
        if teacher_perplexity is not None:
            ax.axhline(teacher_perplexity, ls=":", lw=1, color="black", label="teacher")
        if positive:  # step 0 sits at x = 0, on the linear stretch of the axis
            ax.set_xscale("symlog", linthresh=min(positive))
            ax.set_xlim(left=0)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation perplexity")
        ax.legend(fontsize=7)
        ax.set_title(f"perplexity against {name}")
        path = out_dir / f"comparison_{name}.png"
        save_figure(fig, path)
        paths.append(path)
    return paths
