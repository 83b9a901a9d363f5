"""Search methods side by side on a teacher (SmolLM2-135M by default) at ~50% and ~25% of its parameters.

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

Needs `headstart assets` and a data folder prepared with the teacher's tokenizer. Sized for about
an hour on 2 CPU cores with SmolLM2. On the scale teacher, whose evaluations are cheap, several
search seeds per method show how much of a difference is luck:

    python bench/search.py --teacher scale-teacher --data runs/demo/data --name search-scale \
        --evals 96 --seeds 3 --tokens 4096 --seq-len 256
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
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
    parser.add_argument("--teacher", default="smollm2-135m")
    parser.add_argument("--data", default="runs/demo/data-smollm2", help="prepared with the teacher's tokenizer")
    parser.add_argument("--name", default="search", help="results go to bench/results/NAME.json, .md, .png")
    parser.add_argument("--seeds", type=int, default=1, help="searches per method, seeds 0..N-1")
    parser.add_argument("--evals", type=int, default=24)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--calibration-tokens", type=int, default=16384)
    parser.add_argument("--budgets", nargs="+", default=["50%", "25%"])
    parser.add_argument("--work", default="runs/bench-search")
    args = parser.parse_args()

    teacher = load_model(args.teacher)
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
            objective = ProxyObjective(model.config, act) if kind == "proxy" else PerplexityObjective(model, windows)
            runs = []
            for seed in range(args.seeds):
                cfg = SearchConfig(space=space_name, budget=budget_text, strategy=strategy, evals=args.evals,
                                   tokens=args.tokens, seq_len=args.seq_len, seed=seed,
                                   settings=StrategySettings(population=args.population))
                first = importance_seed(space, budget, act, cfg.seed) if kind == "seeded" else ()
                header = {"teacher": which, "budget": [budget.lo, budget.hi], "method": name, **cfg.to_dict()}
                out = Path(args.work) / args.name / f"{budget_text.rstrip('%')}pct-{name.replace(' ', '_')}-seed{seed}"
                t0 = time.perf_counter()
                summary = run_search(model, space, budget, objective, cfg, out, header, seeds=first)
                best = summary["best"]
                if kind == "proxy":  # the proxy's choice, scored by what matters
                    spec = SubnetSpec.from_dict(best["spec"], model.config)
                    best = best | {"perplexity": evaluate_windows(activate(model, spec), windows).perplexity}
                elif seed == 0:
                    curves[(budget_text, name)] = _best_curve(out)
                runs.append({"seed": seed, "best": best, "wall_seconds": time.perf_counter() - t0,
                             "evaluations": summary["evaluations"], "search_seconds": summary["seconds"]})
            best = min((r["best"] for r in runs), key=lambda b: b["perplexity"])
            per_seed = [r["best"]["perplexity"] for r in runs]
            rows.append({"budget": budget_text, "bin": [budget.lo, budget.hi], "method": name, "space": space_name,
                         "teacher": which, "strategy": strategy, "objective": kind,
                         "evaluations_per_seed": [r["evaluations"] for r in runs], "best_perplexity_per_seed": per_seed,
                         "median_best_perplexity": statistics.median(per_seed), "best_perplexity": best["perplexity"],
                         "best_params": best["params"], "best_spec": best["spec"],
                         "wall_seconds": sum(r["wall_seconds"] for r in runs),
                         "evals_per_minute": sum(r["evaluations"] for r in runs)
                         / max(sum(r["search_seconds"] for r in runs), 1e-9) * 60})
            print(budget_text, name, "best ppl per seed", [round(x, 2) for x in per_seed], flush=True)
    _plot(curves, RESULTS / f"{args.name}.png", args.teacher)
    table = ["| budget | method | space | best perplexity, median of seeds | each seed | params of the best | "
             "evals per seed | evals/min |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        each = ", ".join(f"{x:.2f}" for x in r["best_perplexity_per_seed"])
        counts = r["evaluations_per_seed"]  # a small space can run out of new candidates
        evals_text = str(counts[0]) if len(set(counts)) == 1 else ", ".join(map(str, counts))
        table.append(f"| {r['budget']} | {r['method']} | {r['space']} | {r['median_best_perplexity']:.2f} | {each} | "
                     f"{r['best_params'] / 1e6:.2f}M | {evals_text} | {r['evals_per_minute']:.2f} |")
    body = (f"{args.teacher} ({total / 1e6:.2f}M parameters; full-teacher perplexity {full.perplexity:.2f}) on "
            f"{windows[:, 1:].numel()} held-out tokens per evaluation (seq {args.seq_len}), {args.evals} evaluations "
            f"per method and seed, {args.seeds} seed(s), population {args.population}. Perplexity of the untrained "
            f"sub-network. Activation importance from {calibration[:, :-1].numel()} training tokens took "
            f"{importance_seconds:.0f} s. Budgets are +-2% bins. The proxy rows evaluate perplexity only for their "
            f"final choice.\n\n" + "\n".join(table)
            + f"\n\n![best perplexity against evaluations, seed 0]({args.name}.png)")
    write_results(args.name, {"teacher": args.teacher, "teacher_perplexity": full.perplexity,
                              "importance_seconds": importance_seconds, "seeds": args.seeds, "rows": rows}, body)
    print(body)


def _best_curve(out: Path) -> list[float]:
    best, curve = math.inf, []
    for line in (out / "journal.jsonl").read_text().splitlines()[1:]:
        best = min(best, json.loads(line)["perplexity"])
        curve.append(best)
    return curve


def _plot(curves: dict, path: Path, teacher: str) -> None:
    budgets = sorted({b for b, _ in curves}, key=lambda b: -float(b.rstrip("%")))
    fig, axes = plt.subplots(1, len(budgets), figsize=(6 * len(budgets), 4), squeeze=False)
    for ax, b in zip(axes[0], budgets, strict=True):
        for (budget, name), curve in curves.items():
            if budget == b:
                ax.plot(range(1, len(curve) + 1), curve, label=name)
        ax.set_title(f"{teacher} at {b} of its parameters")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("best perplexity (untrained)")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
