"""Search methods side by side on the real teacher (SmolLM2-135M) at ~50% and ~25% of its parameters.

Every searched method gets the same number of evaluations and the same validation tokens per
evaluation (the first --tokens of the held-out split), and its best perplexity at 0 training
tokens is reported with its evaluations per minute:
- evolution: the paper's bin-constrained evolutionary search, fine-grained layer-wise space;
- random: random search in the same space and bin;
- importance first-k uniform: evolution over coarse-uniform widths of the teacher re-ordered by
  activation importance (so first-k slices keep the most important units);
- magnitude first-k uniform: the same on the teacher re-ordered by weight magnitude;
- evolution on importance order: the paper's evolution, on the importance-ordered teacher (its
  first candidate is the importance-ordered first-k sub-network);
- evolution + importance seed: the paper's evolution whose first candidate is the sub-network the
  activation importance scores choose (best units, and the layers that change the residual most);
- importance proxy: evolution maximising the kept importance (no forward pass per candidate),
  whose best spec is then scored by perplexity once.

Needs `headstart assets` and a data folder prepared with the SmolLM2 tokenizer (`make demo` writes
runs/demo/data-smollm2). Sized for about an hour on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from common import RESULTS, write_results

from headstart.data import TokenWindows
from headstart.eval import evaluate_windows, scoring_windows
from headstart.model import load_model
from headstart.search import PerplexityObjective, ProxyObjective, SearchConfig, run_search
from headstart.search.run import importance_seed
from headstart.search.strategies import StrategySettings
from headstart.subnet import activate, make_space, param_count, parse_budget
from headstart.subnet.importance import activation_importance, magnitude_importance, permute_teacher
from headstart.subnet.spec import SubnetSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="runs/demo/data-smollm2")
    parser.add_argument("--evals", type=int, default=24)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--calibration-tokens", type=int, default=16384)
    parser.add_argument("--budgets", nargs="+", default=["50%", "25%"])
    parser.add_argument("--work", default="runs/bench-search")
    args = parser.parse_args()

    teacher = load_model("smollm2-135m")
    windows = scoring_windows(teacher, args.data, "validation", args.tokens, args.seq_len, what="teacher")
    calibration = TokenWindows(args.data, "train", args.seq_len).fixed_windows(args.calibration_tokens)
    start = time.perf_counter()
    act = activation_importance(teacher, calibration, progress=True)
    importance_seconds = time.perf_counter() - start
    teachers = {"original": teacher, "activation-ordered": permute_teacher(teacher, act),
                "magnitude-ordered": permute_teacher(teacher, magnitude_importance(teacher))}
    full = evaluate_windows(teacher, windows)
    methods = [  # name, teacher, space, strategy, objective kind
        ("evolution", "original", "fine-layerwise", "evolution", "perplexity"),
        ("random", "original", "fine-layerwise", "random", "perplexity"),
        ("importance first-k uniform", "activation-ordered", "coarse-uniform", "evolution", "perplexity"),
        ("magnitude first-k uniform", "magnitude-ordered", "coarse-uniform", "evolution", "perplexity"),
        ("evolution on importance order", "activation-ordered", "fine-layerwise", "evolution", "perplexity"),
        ("evolution + importance seed", "original", "fine-layerwise", "evolution", "seeded"),
        ("importance proxy (fine-layerwise)", "original", "fine-layerwise", "evolution", "proxy"),
    ]
    rows, curves = [], {}
    total = param_count(teacher.config)
    for budget_text in args.budgets:
        budget = parse_budget(budget_text, total)
        for name, which, space_name, strategy, kind in methods:
            model = teachers[which]
            space = make_space(space_name, model.config)
            cfg = SearchConfig(space=space_name, budget=budget_text, strategy=strategy, evals=args.evals,
                               tokens=args.tokens, seq_len=args.seq_len,
                               settings=StrategySettings(population=args.population))
            objective = ProxyObjective(model.config, act) if kind == "proxy" else PerplexityObjective(model, windows)
            seeds = importance_seed(space, budget, act, cfg.seed) if kind == "seeded" else ()
            header = {"teacher": which, "budget": [budget.lo, budget.hi], "method": name, **cfg.to_dict()}
            out = Path(args.work) / f"{budget_text.rstrip('%')}pct-{name.replace(' ', '_')}"
            t0 = time.perf_counter()
            summary = run_search(model, space, budget, objective, cfg, out, header, seeds=seeds)
            wall = time.perf_counter() - t0
            best = summary["best"]
            if kind == "proxy":  # the proxy's choice, scored by what matters
                spec = SubnetSpec.from_dict(best["spec"], model.config)
                best = best | {"perplexity": evaluate_windows(activate(model, spec), windows).perplexity}
            rows.append({"budget": budget_text, "bin": [budget.lo, budget.hi], "method": name, "space": space_name,
                         "teacher": which, "strategy": strategy, "objective": kind, "evaluations":
                         summary["evaluations"], "best_perplexity": best["perplexity"], "best_params": best["params"],
                         "best_spec": best["spec"], "wall_seconds": wall,
                         "evals_per_minute": summary["evaluations"] / max(summary["seconds"], 1e-9) * 60})
            if kind != "proxy":
                curves[(budget_text, name)] = _best_curve(out)
            print(rows[-1]["budget"], name, f"ppl {best['perplexity']:.2f}", f"{wall:.0f}s", flush=True)
    _plot(curves, RESULTS / "search.png")
    table = ["| budget | method | space | best perplexity | params | evals | evals/min |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['budget']} | {r['method']} | {r['space']} | {r['best_perplexity']:.2f} | "
                     f"{r['best_params'] / 1e6:.1f}M | {r['evaluations']} | {r['evals_per_minute']:.2f} |")
    body = (f"SmolLM2-135M ({total / 1e6:.1f}M parameters; full-teacher perplexity {full.perplexity:.2f}) on "
            f"{windows[:, 1:].numel()} held-out tokens per evaluation (seq {args.seq_len}), {args.evals} evaluations "
            f"per method, population {args.population}. Perplexity of the untrained sub-network. Activation "
            f"importance from {calibration[:, :-1].numel()} training tokens took {importance_seconds:.0f} s. "
            "Budgets are +-2% bins. The proxy row evaluates perplexity only for its final choice.\n\n"
            + "\n".join(table) + "\n\n![best perplexity against evaluations](search.png)")
    write_results("search", {"teacher_perplexity": full.perplexity, "importance_seconds": importance_seconds,
                             "rows": rows}, body)
    print(body)


def _best_curve(out: Path) -> list[float]:
    best, curve = math.inf, []
    for line in (out / "journal.jsonl").read_text().splitlines()[1:]:
        best = min(best, json.loads(line)["perplexity"])
        curve.append(best)
    return curve


def _plot(curves: dict, path: Path) -> None:
    budgets = sorted({b for b, _ in curves}, key=lambda b: -float(b.rstrip("%")))
    fig, axes = plt.subplots(1, len(budgets), figsize=(6 * len(budgets), 4), squeeze=False)
    for ax, b in zip(axes[0], budgets, strict=True):
        for (budget, name), curve in curves.items():
            if budget == b:
                ax.plot(range(1, len(curve) + 1), curve, label=name)
        ax.set_title(f"SmolLM2-135M at {b} of its parameters")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("best perplexity (untrained)")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
