"""Estimates for the GPU recipes, from FLOPs and byte counts: memory per GPU, tokens/s and wall time per GPU type.

    PYTHONPATH=src python recipes/gpu/estimate.py     # rewrites recipes/gpu/estimates.md

Nothing here is measured. The student is a coarse-uniform sub-network of the recipe's budget
(the searched one has other widths, but about the same size); FLOPs per token are
headstart.subnet.counts'; speed assumes ASSUMED_MFU of each GPU's dense bf16 peak
(headstart.train.throughput), which bench/gpu.sh measures for a 160M student on one GPU.
Memory per GPU counts the student's fp32 weights, gradients and AdamW moments (16 bytes per
parameter, divided over the ranks under FSDP2), the bf16 teacher (2 bytes per parameter, also
divided under FSDP2), the student's bf16 activations of one micro-batch (about 34 bytes per token,
width and layer: Korthikanti et al. 2022 without the attention scores, which FlashAttention does not
keep; 2 with activation checkpointing) and the chunked KD loss (four fp32 [chunk, vocabulary] tensors).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from headstart.model.checkpoint import decoder_config
from headstart.pipeline import load_pipeline
from headstart.subnet import make_space, param_count, parse_budget
from headstart.subnet.counts import flops_per_token
from headstart.subnet.spec import student_config
from headstart.train.throughput import PEAK_BF16

HERE = Path(__file__).resolve().parent
ASSUMED_MFU = 0.35  # an assumption, not a measurement
# recipe -> (teacher's Hugging Face config, nodes, GPUs per node)
RECIPES = {"pythia-410m-half.yaml": ("pythia-410m.json", 1, 8),
           "llama-3.2-1b-quarter.yaml": ("llama-3.2-1b.json", 2, 8)}
GPUS = (("A100 80GB", "A100", 80), ("H100 SXM 80GB", "H100", 80), ("H200 141GB", "H200", 141))
GIB = 2**30


def prepare_tokens_per_s() -> float:
    """prepare's tokens/s in one process as bench/data_prepare.py measured it."""
    runs = json.loads((HERE.parents[1] / "bench" / "results" / "data_prepare.json").read_text())["runs"]
    return next(r["tokens_per_s"] for r in runs if r["what"] == "prepare --workers 1")


def peak(name: str) -> float:
    return next(value for part, value in PEAK_BF16 if part == name)


def estimate(recipe_name: str) -> dict:
    """The numbers of one recipe (see the module docstring for what each counts)."""
    config_file, nodes, per_node = RECIPES[recipe_name]
    recipe = load_pipeline(HERE / recipe_name)
    train, search = recipe.train, recipe.search
    raw = json.loads((HERE / config_file).read_text())
    raw.pop("rope_scaling", None)  # long-context RoPE scaling changes no FLOP count
    teacher = decoder_config(raw)
    budget = parse_budget(search.budget, param_count(teacher))
    spec = make_space("coarse-uniform", teacher).sample(random.Random(0), budget)
    student = student_config(teacher, spec)
    seq, tokens, ranks = train.seq_len, train.tokens, nodes * per_node
    student_fpt, teacher_fpt = flops_per_token(student, seq_len=seq), flops_per_token(teacher, seq_len=seq)
    train_fpt = 3 * student_fpt + teacher_fpt
    search_flops = search.evals * search.tokens * flops_per_token(teacher, spec, seq)
    shards = ranks if train.parallel == "fsdp" else 1
    per_token_layer = 2 if train.activation_checkpointing else 34
    memory = {"student_states": 16 * param_count(student) / shards,
              "teacher_weights": 2 * param_count(teacher) / shards,
              "activations": per_token_layer * train.micro_batch_size * seq * student.n_embd * student.n_layer,
              "kd_loss": 4 * 4 * train.loss_chunk_tokens * teacher.vocab_size}
    gpus = []
    for label, name, gib in GPUS:
        per_gpu = ASSUMED_MFU * peak(name) / train_fpt
        gpus.append({"gpu": label, "memory_gib": gib, "tokens_per_s_per_gpu": per_gpu,
                     "train_hours": tokens / (per_gpu * ranks) / 3600,
                     "search_seconds": search_flops / (ASSUMED_MFU * peak(name) * ranks)})
    prepare_tokens = recipe.prepare.max_tokens
    return {"recipe": recipe_name, "nodes": nodes, "gpus_per_node": per_node,
            "prepare_tokens": prepare_tokens,
            "prepare_hours_on_2_cores": prepare_tokens / prepare_tokens_per_s() / 3600,
            "teacher_params": param_count(teacher), "student_params": param_count(student),
            "student_layers": student.n_layer, "student_width": student.n_embd, "tokens": tokens,
            "train_flops_per_token": train_fpt, "memory_bytes": memory,
            "memory_gib_per_gpu": sum(memory.values()) / GIB, "gpus": gpus}


def markdown(rows: list[dict]) -> str:
    lines = ["# Estimates for recipes/gpu (not measured)", "",
             f"Made by `PYTHONPATH=src python recipes/gpu/estimate.py` from FLOP and byte counts, assuming "
             f"{ASSUMED_MFU:.0%} MFU; see its docstring for what each number counts. Replace them with measurements "
             "as runs are made (bench/gpu.sh measures MFU on one GPU).", ""]
    for r in rows:
        m = r["memory_bytes"]
        lines += [f"## {r['recipe']}", "",
                  f"{r['nodes']} node(s) x {r['gpus_per_node']} GPUs; teacher {r['teacher_params'] / 1e6:,.0f}M "
                  f"parameters, a student of the budget {r['student_params'] / 1e6:,.0f}M ({r['student_layers']} "
                  f"layers x {r['student_width']}); {r['tokens'] / 1e9:g}B training tokens at "
                  f"{r['train_flops_per_token'] / 1e9:.2f} GFLOP per token (student 3x forward, teacher 1x).", "",
                  f"Memory per GPU, estimated: {r['memory_gib_per_gpu']:.1f} GiB = student states "
                  f"{m['student_states'] / GIB:.1f} + teacher {m['teacher_weights'] / GIB:.1f} + activations "
                  f"{m['activations'] / GIB:.1f} + KD loss chunks {m['kd_loss'] / GIB:.1f}.", "",
                  "| GPU | fits | tokens/s per GPU (estimate) | training wall time (estimate) | search (estimate) |",
                  "|---|---|---|---|---|"]
        for g in r["gpus"]:
            fits = "yes" if r["memory_gib_per_gpu"] < 0.9 * g["memory_gib"] else "no"
            lines.append(f"| {g['gpu']} | {fits} | {g['tokens_per_s_per_gpu']:,.0f} | {g['train_hours']:.1f} h | "
                         f"{g['search_seconds']:.0f} s |")
        lines += ["", f"Prepare tokenizes {r['prepare_tokens'] / 1e9:g}B tokens (once: the measuring pass that stops "
                  f"at --max-tokens keeps them for the writing pass): {r['prepare_hours_on_2_cores']:.1f} h at the "
                  f"{prepare_tokens_per_s():,.0f} tokens/s measured on 2 CPU cores (bench/results/data_prepare.md), "
                  "plus the time the hub takes to stream the text; a node's many cores should be faster, which is "
                  "not measured.", ""]
    return "\n".join(lines)


def main() -> None:
    text = markdown([estimate(name) for name in RECIPES])
    (HERE / "estimates.md").write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
