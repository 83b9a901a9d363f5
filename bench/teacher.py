"""The scale-model teacher on this machine: how its size was chosen, and what its shipped run cost.

    python bench/teacher.py [--run runs/scale-teacher/train] [--quarter runs/scale-teacher/quarter-train]
                            [--repro RUN_DIR] [--steps 6]

1. Sizing: the training-step throughput (tokens/s: forward, chunked CE, backward, AdamW) of
   candidate Pythia-style shapes at the recipe's batch (32 x 256), measured side by side, taking
   turns, and the size of each one's bf16 weights. The teacher must train on about 10M tokens in
   about 2 hours (at least ~1,400 tokens/s) and ship as bf16 safetensors under 20 MB.
2. A teacher run and its quarter-size comparison, read from their run folders: tokens, steps,
   wall time and throughput of each whole run (evaluations and checkpoints included), and the
   final validation loss on the same held-out tokens.
3. Reproduction: a second run of the same recipe (`--repro`, stopped after some steps) against
   the teacher run, step by step: the largest difference in training loss over the steps both ran.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from common import best_seconds, write_results

from headstart.model import Decoder, init_weights
from headstart.model.checkpoint import decoder_config
from headstart.subnet import flops_per_token, param_count
from headstart.train.losses import chunked_losses
from headstart.train.metrics import read_metrics

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "scale-teacher"
BATCH, SEQ = 32, 256
TARGET_TOKENS = 10_000_000
SHIP_LIMIT_BYTES = 20_000_000
CANDIDATES = {  # (layers, width, heads); MLP 4x, the recipe's other settings
    "6 x 256": (6, 256, 8),
    "8 x 256": (8, 256, 8),
    "8 x 320": (8, 320, 8),
    "8 x 384": (8, 384, 8),
}


def candidate_config(layers: int, width: int, heads: int) -> dict:
    raw = json.loads((RECIPE / "architecture.json").read_text())
    return raw | {"num_hidden_layers": layers, "hidden_size": width, "num_attention_heads": heads,
                  "intermediate_size": 4 * width}


def step_fn(raw: dict, tokens: torch.Tensor):
    """One full training step of a fresh model of this shape on `tokens`."""
    model = Decoder(decoder_config(raw))
    init_weights(model, 0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        sums = chunked_losses(model.hidden_states(tokens[:, :-1]), model.head_weight, tokens[:, 1:])
        (sums.objective / tokens[:, 1:].numel()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return model, step


def sizing(steps: int) -> list[dict]:
    tokens = torch.randint(0, 4096, (BATCH, SEQ + 1), generator=torch.Generator().manual_seed(0))
    built = {name: step_fn(candidate_config(*shape), tokens) for name, shape in CANDIDATES.items()}
    seconds = best_seconds({name: step for name, (_, step) in built.items()}, repeats=steps)
    rows = []
    for name, (model, _) in built.items():
        tps, cfg = BATCH * SEQ / seconds[name], model.config
        rows.append({"shape": name, "params": param_count(cfg), "flops_per_token": flops_per_token(cfg),
                     "bf16_bytes": 2 * param_count(cfg), "step_s": round(seconds[name], 3), "tokens_per_s": round(tps),
                     "hours_for_10M": round(TARGET_TOKENS / tps / 3600, 2)})
    return rows


def finished_run(run: Path) -> dict | None:
    if not (run / "summary.json").is_file():
        return None
    summary = json.loads((run / "summary.json").read_text())
    return {k: summary[k] for k in ("tokens", "steps", "seconds", "tokens_per_s", "val_loss", "val_ppl")} | {
        "run": str(run), "params": param_count(decoder_config(json.loads((run / "final/config.json").read_text())))}


def training_losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r}


def reproduction(run: Path, repro: Path) -> dict:
    shipped, again = training_losses(run), training_losses(repro)
    steps = sorted(set(shipped) & set(again))
    if not steps:
        raise SystemExit(f"{repro} has no training step in common with {run}")
    return {"run": str(repro), "steps_compared": len(steps), "last_step": steps[-1],
            "max_abs_loss_difference": max(abs(shipped[s] - again[s]) for s in steps)}


def run_line(name: str, r: dict) -> str:
    return (f"| {name} | {r['params'] / 1e6:.2f}M | {r['tokens']:,} | {r['steps']} | {r['seconds'] / 60:.1f} | "
            f"{r['tokens_per_s']:,.0f} | {r['val_loss']:.4f} | {r['val_ppl']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/scale-teacher/train"))
    parser.add_argument("--quarter", type=Path, default=Path("runs/scale-teacher/quarter-train"))
    parser.add_argument("--repro", type=Path, help="a second run of the recipe to compare step by step")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per candidate (the fastest counts)")
    args = parser.parse_args()
    rows = sizing(args.steps)
    run, quarter = finished_run(args.run), finished_run(args.quarter)
    repro = reproduction(args.run, args.repro) if args.repro else None
    table = "\n".join(f"| {r['shape']} | {r['params'] / 1e6:.2f}M | {r['bf16_bytes'] / 1e6:.1f} MB"
                      f"{'' if r['bf16_bytes'] < SHIP_LIMIT_BYTES else ' (over 20 MB)'} | "
                      f"{r['flops_per_token'] / 1e6:.1f}M | {r['step_s']:.2f} | {r['tokens_per_s']:,} | "
                      f"{r['hours_for_10M']:.2f} |" for r in rows)
    body = f"""Training-step throughput of candidate teacher shapes (GPT-NeoX, MLP 4x, context {SEQ}, vocabulary 4096,
batch {BATCH} x {SEQ}, fp32, fastest of {args.steps} steps each, taking turns):

| shape (layers x width) | parameters | bf16 weights | FLOPs/token (fwd) | step (s) | tokens/s | hours for 10M tokens |
|---|---|---|---|---|---|---|
{table}
"""
    runs = [(name, r) for name, r in (("teacher", run), ("quarter-size model", quarter)) if r]
    if runs:
        body += f"""
Whole runs (evaluations and checkpoints included), read from their run folders; validation on the same
held-out tokens:

| run | parameters | tokens | steps | wall time (min) | tokens/s | validation loss | perplexity |
|---|---|---|---|---|---|---|---|
{chr(10).join(run_line(name, r) for name, r in runs)}
"""
    if repro:
        body += f"""
Reproduction: `{repro['run']}`, a second run of the same recipe, against the teacher run over its first
{repro['steps_compared']} steps: largest difference in training loss {repro['max_abs_loss_difference']:.3g}.
"""
    write_results("teacher", {"sizing": rows, "teacher_run": run, "quarter_run": quarter, "reproduction": repro},
                  body)
    print(body)


if __name__ == "__main__":
    main()
