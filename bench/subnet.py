"""Sub-networks of SmolLM2-135M at 0 training tokens: what evaluating one costs, and which units to keep.

1. Cost. A candidate is evaluated on 8k tokens by activating it on the loaded teacher (views
   and one gather, no copy of the teacher), against extracting it into a standalone model
   first. One coarse candidate (pure prefix views) and one fine-grained (gathered indices).
2. Quality. Held-out perplexity at ~50% and ~25% of the teacher's parameters of
   (a) first-k uniform: every width and the depth shrunk in proportion, prefixes kept
       (and a variant keeping all layers, shrinking only the widths);
   (b) the same widths on the importance-ordered teacher (activation scores; magnitude for
       comparison; and activation units plus the layers that change the residual most);
   (c) the best of N random fine-grained, layer-wise sub-networks (any layers), chosen on a
       separate selection set, then scored on the report set like the others.
Token sets, all from one prepared corpus (SmolLM2 tokenizer): calibration = the first tokens
of the train split; selection = its last tokens; report = the validation split (whole held-out
documents). Writes bench/results/subnet.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import torch
from common import write_results

from headstart.atomic import write_json_atomic
from headstart.data import TokenWindows, load_manifest, open_split, prepare_data
from headstart.eval import evaluate_windows
from headstart.model import load_model
from headstart.subnet import activate, extract, full_spec, make_space, param_count, parse_budget
from headstart.subnet.importance import (
    activation_importance,
    importance_spec,
    magnitude_importance,
    permute_teacher,
    top_layers,
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def prepared_corpus(work: Path, teacher_dir: Path) -> Path:
    """The core prose corpus tokenized with the teacher's tokenizer (made once, then reused)."""
    from headstart.assets import corpus_files

    data = work / "data"
    if not (data / "manifest.json").is_file():
        log("tokenizing the corpus with the teacher's tokenizer")
        prepare_data([str(p) for p in corpus_files()], data, tokenizer=str(teacher_dir))
    return data


def tail_windows(data: Path, split: str, seq_len: int, n_tokens: int) -> torch.Tensor:
    """The last windows of a split (TokenWindows.fixed_windows gives the first ones)."""
    tokens = open_split(load_manifest(data), split)
    n = n_tokens // seq_len
    tail = torch.from_numpy(tokens[-(n * seq_len + 1):].astype("int64"))
    return tail.unfold(0, seq_len + 1, seq_len)


def evaluate(model, windows: torch.Tensor, batch_size: int) -> dict:
    r = evaluate_windows(model, windows, batch_size)
    return {"loss": r.loss, "perplexity": r.perplexity, "tokens": r.tokens, "seconds": r.seconds}


def report_row(name: str, source, spec, note: str, windows: torch.Tensor, batch_size: int) -> dict:
    """Perplexity of `spec` activated on `source` (the teacher or a re-ordered copy) on the report set."""
    cfg = source.config
    result = evaluate(activate(source, spec), windows, batch_size)
    n = param_count(cfg, spec)
    log(f"{name}: {n / 1e6:.2f}M params, perplexity {result['perplexity']:.1f} ({spec.summary()})")
    return {"name": name, "params": n, "fraction": n / param_count(cfg), "summary": spec.summary(), "note": note,
            **result}


def timing(teacher, spec, name: str, windows: torch.Tensor, batch_size: int) -> dict:
    start = time.perf_counter()
    view = activate(teacher, spec)
    activate_s = time.perf_counter() - start
    on_view = evaluate(view, windows, batch_size)
    del view
    start = time.perf_counter()
    standalone = extract(teacher, spec)
    extract_s = time.perf_counter() - start
    on_copy = evaluate(standalone, windows, batch_size)
    row = {"candidate": name, "params": param_count(teacher.config, spec), "activate_s": activate_s,
           "activated_eval_s": on_view["seconds"], "extract_s": extract_s, "extracted_eval_s": on_copy["seconds"],
           "activate_total_s": activate_s + on_view["seconds"], "extract_total_s": extract_s + on_copy["seconds"],
           "loss_difference": abs(on_view["loss"] - on_copy["loss"])}
    row["extract_over_activate"] = row["extract_total_s"] / row["activate_total_s"]
    log(f"timing {name}: activate {activate_s:.3f}s + eval {on_view['seconds']:.1f}s; "
        f"extract {extract_s:.3f}s + eval {on_copy['seconds']:.1f}s")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=8192, help="tokens per evaluation (selection and report)")
    parser.add_argument("--calibration-tokens", type=int, default=8192)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=20, help="random fine-grained sub-networks per budget")
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.5, 0.25], help="fractions of the teacher")
    parser.add_argument("--tolerance", type=float, default=0.02, help="bin half-width, relative")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/bench-subnet", help="prepared data and full best specs go here")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    load_before = os.getloadavg()
    work = Path(args.work)
    teacher = load_model(args.teacher)
    cfg, total = teacher.config, param_count(teacher.config)
    data = prepared_corpus(work, teacher.source_dir)
    report = TokenWindows(data, "validation", args.seq_len).fixed_windows(args.tokens)
    calibration = TokenWindows(data, "train", args.seq_len).fixed_windows(args.calibration_tokens)
    selection = tail_windows(data, "train", args.seq_len, args.tokens)
    log(f"teacher {total:,} params; windows: report {tuple(report.shape)}, selection {tuple(selection.shape)}, "
        f"calibration {tuple(calibration.shape)}")

    evaluate(teacher, report[:1], args.batch_size)  # warm-up
    teacher_report = evaluate(teacher, report, args.batch_size)
    log(f"teacher report perplexity {teacher_report['perplexity']:.2f}")
    start = time.perf_counter()
    scores = {"activation": activation_importance(teacher, calibration, args.batch_size),
              "magnitude": magnitude_importance(teacher)}
    importance_s = time.perf_counter() - start
    ordered = {name: permute_teacher(teacher, s) for name, s in scores.items()}
    log(f"importance in {importance_s:.1f}s; least important layers: "
        f"{sorted(range(cfg.n_layer), key=lambda i: float(scores['activation'].layers[i]))[:5]}")

    budgets, timings = [], []
    for fraction in args.budgets:
        budget = parse_budget(f"{fraction * 100}%", total, args.tolerance)
        first_k = make_space("coarse-uniform", cfg).repair(full_spec(cfg), budget, random.Random(args.seed))
        all_layers = make_space("coarse-uniform", cfg, min_layers=cfg.n_layer).repair(
            full_spec(cfg), budget, random.Random(args.seed))
        fine_space = make_space("fine-layerwise", cfg)
        rng = random.Random(args.seed * 1000 + int(fraction * 100))
        candidates = [fine_space.sample(rng, budget) for _ in range(args.candidates)]
        if not timings:
            timings = [timing(teacher, first_k, "coarse (prefix views)", selection, args.batch_size),
                       timing(teacher, candidates[0], "fine-grained (gathered)", selection, args.batch_size)]
        by_layers = importance_spec(cfg, scores["activation"], first_k,
                                    layers=top_layers(scores["activation"], len(first_k.layers)))
        fixed = [
            ("(a) first-k uniform", teacher, first_k, "widths and depth shrunk in proportion"),
            ("(b) importance-ordered uniform", ordered["activation"], first_k,
             "same widths as (a), activation-ordered teacher"),
            ("(b) + important layers", teacher, by_layers,
             "(b), keeping the layers with the largest 1 - cos instead of the first k"),
            ("(b) magnitude-ordered uniform", ordered["magnitude"], first_k,
             "same widths as (a), magnitude-ordered teacher"),
            ("(a) first-k uniform, all layers", teacher, all_layers, "only the widths shrunk, in proportion"),
            ("(b) importance-ordered, all layers", ordered["activation"], all_layers,
             "same widths, activation-ordered teacher"),
        ]
        rows = [report_row(name, source, spec, note, report, args.batch_size) for name, source, spec, note in fixed]
        selection_ppl = []
        for i, spec in enumerate(candidates):
            selection_ppl.append(evaluate(activate(teacher, spec), selection, args.batch_size)["perplexity"])
            log(f"{fraction:.0%} random {i + 1}/{len(candidates)}: selection perplexity {selection_ppl[-1]:.1f}")
        best = min(range(len(candidates)), key=selection_ppl.__getitem__)
        rows.append(report_row(f"(c) best of {len(candidates)} random fine-grained", teacher, candidates[best],
                               f"candidate {best + 1}, chosen on the selection set", report, args.batch_size))
        write_json_atomic(work / f"best-random-{int(fraction * 100)}.json", {"spec": candidates[best].to_dict(cfg)})
        budgets.append({"fraction": fraction, "bin": [budget.lo, budget.hi], "first_k_spec": first_k.to_dict(cfg),
                        "rows": rows, "random_selection_perplexities": selection_ppl, "best_random": best})

    results = {"teacher": {"name": args.teacher, "params": total, "report": teacher_report},
               "settings": {k: v for k, v in vars(args).items() if k != "work"},
               "token_sets": {"report": "validation split, first windows", "selection": "train split, last windows",
                              "calibration": "train split, first windows"},
               "importance_seconds": importance_s, "timing": timings, "budgets": budgets,
               "load_average": {"start": load_before, "end": os.getloadavg()}}
    write_results("subnet", results, markdown(results))
    log("wrote bench/results/subnet.json and subnet.md")


def markdown(r: dict) -> str:
    t = r["teacher"]
    s = r["settings"]
    lines = [__doc__.split("\n\n")[0], "",
             f"Teacher {t['name']}: {t['params'] / 1e6:.1f}M parameters, report perplexity "
             f"{t['report']['perplexity']:.2f} on {t['report']['tokens']} tokens (seq {s['seq_len']}, "
             f"batch {s['batch_size']}, fp32, CPU). Machine load average (1/5/15 min) at the start "
             f"{'/'.join(f'{x:.1f}' for x in r['load_average']['start'])}, at the end "
             f"{'/'.join(f'{x:.1f}' for x in r['load_average']['end'])}: other jobs share these 2 cores, "
             "so compare the timings within a row, not across runs.", "",
             "## Cost of evaluating one candidate on the selection set", "",
             "| candidate | params | activate | eval (activated) | extract | eval (extracted) | "
             "extract path / activate path | loss difference |", "|---|---|---|---|---|---|---|---|"]
    for x in r["timing"]:
        lines.append(f"| {x['candidate']} | {x['params'] / 1e6:.1f}M | {x['activate_s']:.3f}s | "
                     f"{x['activated_eval_s']:.1f}s | {x['extract_s']:.3f}s | {x['extracted_eval_s']:.1f}s | "
                     f"{x['extract_over_activate']:.2f}x | {x['loss_difference']:.1e} |")
    lines += ["", f"Importance scores (one pass over {s['calibration_tokens']} calibration tokens): "
              f"{r['importance_seconds']:.1f}s.", "",
              "## Perplexity at 0 training tokens (report set)", ""]
    for b in r["budgets"]:
        lines += [f"### ~{b['fraction']:.0%} of the teacher (bin {b['bin'][0] / 1e6:.2f}M-{b['bin'][1] / 1e6:.2f}M)",
                  "", "| sub-network | params | perplexity | shape | how |", "|---|---|---|---|---|"]
        for row in b["rows"]:
            lines.append(f"| {row['name']} | {row['params'] / 1e6:.2f}M ({row['fraction']:.1%}) | "
                         f"{row['perplexity']:.1f} | {row['summary']} | {row['note']} |")
        ppl = sorted(b["random_selection_perplexities"])
        lines += ["", f"Random fine-grained candidates on the selection set: best {ppl[0]:.1f}, median "
                  f"{ppl[len(ppl) // 2]:.1f}, worst {ppl[-1]:.1f}.", ""]
    lines += ["Full results, with the first-k specs: `subnet.json`. Token sets: "
              + json.dumps(r["token_sets"])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
