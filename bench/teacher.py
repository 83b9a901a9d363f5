"""The scale-model teacher on this machine: how its size was chosen, and what its shipped run cost.

    python bench/teacher.py [--run runs/scale-teacher/train] [--steps 6]

1. Sizing: the training-step throughput (tokens/s: forward, chunked CE, backward, AdamW) of
   candidate Pythia-style shapes at the recipe's batch (32 x 256), measured side by side, taking
   turns. The issue asks for about 10M tokens in about 2 hours, i.e. at least ~1,400 tokens/s.
2. The shipped run, read from its run folder: tokens, steps, wall time and throughput of the
   whole run (evaluations and checkpoints included), and its final validation loss.
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

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "scale-teacher"
BATCH, SEQ = 32, 256
TARGET_TOKENS, TARGET_SECONDS = 10_000_000, 2 * 3600
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
                     "step_s": round(seconds[name], 3), "tokens_per_s": round(tps),
                     "hours_for_10M": round(TARGET_TOKENS / tps / 3600, 2)})
    return rows


def shipped_run(run: Path) -> dict | None:
    if not (run / "summary.json").is_file():
        return None
    summary = json.loads((run / "summary.json").read_text())
    return {k: summary[k] for k in ("tokens", "steps", "seconds", "tokens_per_s", "val_loss", "val_ppl")} | {
        "run": str(run)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/scale-teacher/train"))
    parser.add_argument("--steps", type=int, default=6, help="timed steps per candidate (the fastest counts)")
    args = parser.parse_args()
    rows = sizing(args.steps)
    run = shipped_run(args.run)
    table = "\n".join(f"| {r['shape']} | {r['params'] / 1e6:.2f}M | {r['flops_per_token'] / 1e6:.1f}M | "
                      f"{r['step_s']:.2f} | {r['tokens_per_s']:,} | {r['hours_for_10M']:.2f} |" for r in rows)
    body = f"""Training-step throughput of candidate teacher shapes (GPT-NeoX, MLP 4x, context {SEQ}, vocabulary 4096,
batch {BATCH} x {SEQ}, fp32, fastest of {args.steps} steps each, taking turns):

| shape (layers x width) | parameters | FLOPs/token (fwd) | step (s) | tokens/s | hours for 10M tokens |
|---|---|---|---|---|---|
{table}
"""
    if run:
        body += f"""
The shipped run (`{run['run']}`, whole run: evaluations and checkpoints included): {run['tokens']:,} tokens in
{run['steps']} steps, {run['seconds'] / 3600:.2f} hours wall time, {run['tokens_per_s']:,.0f} tokens/s; final
held-out validation loss {run['val_loss']:.4f} (perplexity {run['val_ppl']:.2f}).
"""
    write_results("teacher", {"sizing": rows, "shipped_run": run}, body)
    print(body)


if __name__ == "__main__":
    main()
