"""Ship a trained scale-model teacher: bf16 Hugging Face folder, its held-out evaluation, curve and card.

    python scripts/ship_teacher.py RUN_DIR OUT_DIR [--compare QUARTER_RUN_DIR]

RUN_DIR is a `headstart train` run (final/, metrics.jsonl, summary.json, train_config.json);
QUARTER_RUN_DIR the quarter-size model trained for a few minutes on the same data
(recipes/scale-teacher/quarter-student.sh), which the card and the curve show beside the teacher.
The card's perplexity is measured on the shipped bf16 weights (loaded back in fp32), on the
first 32,768 tokens of Jane Austen's *Persuasion*, a document held out of training; the test
tests/test_scale_teacher.py measures it again the same way. The config's bos/eos ids and the
generation config are the tokenizer's (save_model writes them), so generate stops at its end of text.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import torch

from headstart.assets import corpus_files
from headstart.atomic import atomic_dir
from headstart.eval.text import evaluate_text
from headstart.model import load_model, save_model
from headstart.runtime import describe_hardware
from headstart.subnet import param_count
from headstart.train.plots import plot_training

HELDOUT = ("persuasion.txt", 32768, 256)  # file, tokens, window


def heldout_file() -> Path:
    return next(p for p in corpus_files(["austen"]) if p.name == HELDOUT[0])


class Run:
    """What the card needs of a `headstart train` run folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.summary = json.loads((folder / "summary.json").read_text())
        self.recipe = json.loads((folder / "train_config.json").read_text())


def provenance(run_dir: Path, out_dir: Path) -> str:
    """Which code trained the run: the commit of the checkout holding it, and whether its tree was clean.

    Asked before anything is written, and blind to the folder being shipped (run.sh ships into its
    own checkout, replacing the teacher that was there)."""
    git = ["git", "-C", str(run_dir)]
    try:
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        top = Path(subprocess.run([*git, "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                                  check=True).stdout.strip())
        shipped = out_dir.resolve()
        skip = [f":(top,exclude){shipped.relative_to(top.resolve())}"] if shipped.is_relative_to(top.resolve()) else []
        dirty = subprocess.run([*git, "status", "--porcelain", "--", ":/", *skip], capture_output=True, text=True,
                               check=True)
    except (OSError, subprocess.CalledProcessError):
        return "a run outside a git checkout"
    state = "with uncommitted changes" if dirty.stdout.strip() else "clean"
    return f"`recipes/scale-teacher/run.sh` in a checkout of commit {commit.stdout.strip()} ({state})"


def hardware(summary: dict) -> str:
    """Where the run trained. A summary that does not say (headstart recorded it only from late 2026 on)
    was shipped where it trained, as run.sh does: on this machine's CPU, in fp32."""
    if "hardware" in summary:
        return f"{summary['hardware']}, {summary['compute']}"
    return f"{describe_hardware(torch.device('cpu'))}, fp32"


def card(cfg, teacher: Run, quarter: Run | None, heldout_tokens: int, heldout_ppl: float, run: str) -> str:
    summary, recipe = teacher.summary, teacher.recipe
    shape = (f"{param_count(cfg) / 1e6:.2f}M ({cfg.n_layer} layers, width {cfg.n_embd}, {cfg.layers[0].n_head} heads, "
             f"MLP {cfg.layers[0].mlp}, context {cfg.max_positions})")
    rows = [
        ("parameters", shape),
        ("architecture", f"parallel residual, partial rotary ({cfg.rotary_fraction}), LayerNorm, GELU, untied head"),
        ("tokenizer", f"byte-level BPE, {cfg.vocab_size} tokens, trained on the training split"),
        ("data", "Shakespeare, King James Bible, Austen, Brown, fortunes, Python 3.11 docs; held out: *Persuasion*, "
                 "*Hamlet*, *The Tempest*, *Twelfth Night*, Brown humour (cr*)"),
        ("tokens seen", f"{summary['tokens']:,}"),
        ("run", run),
        ("training", f"{summary['steps']} steps, {summary['seconds'] / 60:.1f} min at {summary['tokens_per_s']:.0f} "
                     f"tokens/s on {hardware(summary)}"),
        (f"validation loss (held-out documents, first {recipe['eval_tokens']:,} tokens)",
         f"{summary['val_loss']:.4f} (perplexity {summary['val_ppl']:.2f}), fp32 weights"),
        (f"perplexity on *Persuasion* (first {heldout_tokens:,} tokens, window {HELDOUT[2]})",
         f"{heldout_ppl:.2f}, shipped bf16 weights (`evaluation.json`)"),
    ]
    if quarter is not None:
        q, qcfg = quarter.summary, load_model(quarter.folder / "final").config
        rows.append((f"quarter-size model ({param_count(qcfg) / 1e6:.2f}M: {qcfg.n_layer} layers, width {qcfg.n_embd}) "
                     f"trained from scratch for {q['seconds'] / 60:.1f} min ({q['tokens']:,} tokens)",
                     f"validation loss {q['val_loss']:.4f} (perplexity {q['val_ppl']:.2f}) on the same held-out "
                     "tokens"))
    settings = {k: recipe[k] for k in ("tokens", "seq_len", "batch_size", "lr", "schedule", "warmup_fraction",
                                       "min_lr_ratio", "seed")}
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"""# scale-teacher

A Pythia-style GPT-NeoX model that headstart pretrained itself on the offline prose corpus: the
embedded default teacher (`--teacher scale-teacher`). Loads with plain transformers:
`AutoModelForCausalLM.from_pretrained(path)` gives `GPTNeoXForCausalLM`.

| | |
|---|---|
{table}

Recipe: `recipes/scale-teacher/` (architecture.json, train.yaml, run.sh; the quarter-size comparison:
quarter-student.json, .yaml, .sh); `bash recipes/scale-teacher/run.sh` reproduces it from a fresh clone.
Training settings: `{json.dumps(settings)}`.

![training curve](training_curve.png)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--compare", type=Path, metavar="QUARTER_RUN_DIR")
    args = parser.parse_args()
    teacher, quarter = Run(args.run_dir), Run(args.compare) if args.compare else None
    out_dir = args.out_dir
    model = load_model(teacher.folder / "final")
    run = provenance(teacher.folder, out_dir)
    with atomic_dir(out_dir) as tmp:
        save_model(model, tmp / "model", dtype=torch.bfloat16)
        for f in (tmp / "model").iterdir():
            f.rename(tmp / f.name)
        (tmp / "model").rmdir()
        shipped = load_model(tmp)
        result = evaluate_text(shipped, heldout_file(), HELDOUT[1], HELDOUT[2])
        evaluation = {"text": f"austen/{HELDOUT[0]}", "tokens": result.tokens, "seq_len": HELDOUT[2],
                      "loss": result.loss, "perplexity": result.perplexity, "dtype": "bfloat16 weights, fp32 compute"}
        (tmp / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
        runs = {"teacher": teacher.folder} | ({"quarter-size model": quarter.folder} if quarter else {})
        plot_training(runs, tmp / "training_curve.png", title="scale-model teacher (validation: held-out documents)")
        (tmp / "README.md").write_text(card(shipped.config, teacher, quarter, result.tokens, result.perplexity, run))
    print(f"shipped {out_dir}: perplexity {result.perplexity:.2f} on {evaluation['text']}")


if __name__ == "__main__":
    main()
