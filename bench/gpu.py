"""The device check's measurements: search evaluations/s in bf16 and fp32, training tokens/s and MFU with KD,
and the KD loss alone through each kernel.

bench/gpu.sh runs this after the CUDA tests, on a machine with one GPU, within 5 minutes:
- search: perplexity evaluations per second of 8 random sub-networks (fine-layerwise space, 50%
  of the parameters) of a Pythia-410M-shaped teacher (random weights from GPTNeoXConfig, Pythia's
  vocabulary of 50304) in exact fp32 and in bf16 autocast (search/objective.py's two paths), and
  the largest relative difference of their perplexities;
- training: headstart's step (build_run / train_step: bf16 autocast, fused AdamW, TF32) with
  forward-KL distillation of a Pythia-160M-shaped student from that teacher, in three variants:
  eager, torch.compile of the blocks, and compile with activation checkpointing. Each is timed over
  10 steps after 4 warm-up steps (compilation happens there), with one wait for the GPU at each end;
  MFU is the student's 3x and the teacher's 1x forward FLOPs per token (headstart.subnet.counts)
  over the device's dense bf16 peak (headstart.train.throughput; an unknown GPU gets none). Where liger-kernel
  is importable on CUDA, a fourth variant is eager with --kd-kernel liger, beside the eager (chunked) one;
- the KD loss alone: seconds and peak memory (above its inputs, gradients included) of one forward and
  backward of the forward-KL loss over one micro-batch of the two models' hidden states and full vocabulary,
  through the chunked loss and, where liger-kernel is importable, liger's (compiled on CUDA only).
Results are written after each part, so a run stopped by its time limit keeps what it measured.
--dry-run: tiny shapes and one step on whatever device there is, to check the script on a CPU;
its results go to --results (not bench/results), and say that they measure nothing.
"""

from __future__ import annotations

import argparse
import functools
import gc
import random
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import torch
from common import RESULTS, write_results
from train import SHAPES, make_world

from headstart.model import load_model
from headstart.runtime import compute_autocast
from headstart.search.objective import PerplexityObjective
from headstart.settings import make
from headstart.subnet import make_space, param_count, parse_budget
from headstart.train.config import TrainConfig
from headstart.train.distributed import init_ranks
from headstart.train.fused_kd import liger_installed, liger_losses
from headstart.train.inputs import load_inputs
from headstart.train.loop import build_run, model_flops, train_step
from headstart.train.losses import TeacherHidden, chunked_losses, parse_kd_loss
from headstart.train.throughput import model_flops_utilisation, peak_flops

VARIANTS = {"eager": {}, "compile": {"compile": True},
            "compile + activation checkpointing": {"compile": True, "activation_checkpointing": True}}
LIGER_VARIANT = {"eager, liger KD": {"kd_kernel": "liger"}}  # beside eager: the same step with the other kernel


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training(folders: dict[str, Path], work: Path, variant: str, settings: dict, args: argparse.Namespace) -> dict:
    """tokens/s, MFU and peak memory of headstart's KD step with `settings` (TrainConfig fields)."""
    fields = {"student": folders["student"], "data": folders["data"], "out": work / "run",
              "teacher": folders["teacher"], "kd": "forward_kl", "tokens": 10**12, "seq_len": args.seq,
              "batch_size": args.batch, "micro_batch_size": args.micro_batch} | settings
    cfg = make(TrainConfig, fields)
    ranks = init_ranks()
    run = build_run(cfg, ranks, load_inputs(cfg, ranks, teacher_dtype=torch.bfloat16
                                            if ranks.device.type == "cuda" else torch.float32))
    device = ranks.device
    start = time.perf_counter()
    for i in range(args.warmup):
        train_step(run, i)
    sync(device)
    warmup_s = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    flops_before, start = model_flops(run.ledger), time.perf_counter()
    for i in range(args.warmup, args.warmup + args.steps):
        stats = train_step(run, i)
    sync(device)
    seconds = time.perf_counter() - start
    flops = model_flops(run.ledger) - flops_before
    row = {"variant": variant, "tokens_per_s": args.steps * run.tokens_per_step / seconds,
           "mfu": model_flops_utilisation(flops, seconds, peak_flops(device)), "step_s": seconds / args.steps,
           "warmup_s": warmup_s, "last_loss": stats.read(ranks)["loss"],
           "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
           "model_flops_per_token": flops / (args.steps * run.tokens_per_step)}
    del run, stats
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def optional_kernel(measure: Callable[[], dict], **row) -> dict:
    """`measure()`, or the error it raised as the row: the optional kernel failing must not cost the device
    check its other measurements (the machine is lent for minutes)."""
    try:
        return row | measure()
    except Exception as error:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return row | {"error": f"{type(error).__name__}: {error}"[:300]}


def kd_loss(args: argparse.Namespace, device: torch.device) -> dict:
    """Seconds and peak memory of the forward-KL loss (forward and backward) alone, per kernel, at the training
    shapes: random hidden states of one micro-batch (bf16 on CUDA, as autocast makes them), an fp32 student head."""
    tokens, vocab = args.micro_batch * args.seq, args.vocab
    width, teacher_width = SHAPES[args.student]["hidden_size"], SHAPES[args.teacher]["hidden_size"]
    low = torch.bfloat16 if device.type == "cuda" else torch.float32
    g = torch.Generator(device=device).manual_seed(0)
    hidden = torch.randn(tokens, width, device=device, generator=g).to(low).requires_grad_()
    head = (torch.randn(vocab, width, device=device, generator=g) * 0.02).requires_grad_()
    teacher = TeacherHidden(torch.randn(tokens, teacher_width, device=device, generator=g).to(low),
                            (torch.randn(vocab, teacher_width, device=device, generator=g) * 0.02).to(low))
    targets = torch.randint(vocab, (tokens,), device=device, generator=g)
    defaults = TrainConfig()
    kd = parse_kd_loss("forward_kl", defaults.temperature, defaults.kd_weight, defaults.kd_top_k)
    kernels = {"chunked": chunked_losses}
    if liger_installed():
        kernels["liger"] = functools.partial(liger_losses, compiled=device.type == "cuda")
    rows = {}
    for name, losses in kernels.items():
        def step(losses=losses) -> None:
            with compute_autocast(device, "auto"):
                sums = losses(hidden, head, targets, kd, teacher, defaults.loss_chunk_tokens)
            (sums.objective / tokens).backward()
            hidden.grad = head.grad = None

        def measure(step=step) -> dict:
            for _ in range(2):  # warm-up: kernels chosen, liger's step compiled
                step()
            sync(device)
            if device.type == "cuda":
                before = torch.cuda.memory_allocated(device)
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            for _ in range(args.loss_repeats):
                step()
            sync(device)
            return {"seconds": (time.perf_counter() - start) / args.loss_repeats,
                    "peak_memory_gib": (torch.cuda.max_memory_allocated(device) - before) / 2**30
                    if device.type == "cuda" else None}
        rows[name] = measure() if name == "chunked" else optional_kernel(measure)
    return {"tokens": tokens, "vocab": vocab, "chunk_tokens": defaults.loss_chunk_tokens, "rows": rows}


def search(folders: dict[str, Path], args: argparse.Namespace) -> dict:
    """Evaluations/s of the same random sub-networks in fp32 and in bf16 autocast, and their perplexities."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    teacher = load_model(folders["teacher"]).to(device)
    windows = load_inputs(make(TrainConfig, {"student": folders["teacher"], "data": folders["data"], "out": "unused",
                                             "tokens": 1, "seq_len": args.seq, "eval_tokens": args.eval_tokens}),
                          init_ranks()).validation
    space = make_space("fine-layerwise", teacher.config)
    budget = parse_budget("50%", param_count(teacher.config))
    rng = random.Random(0)
    specs = [space.sample(rng, budget) for _ in range(args.candidates)]
    rows = {}
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 is exact fp32 here, as in `headstart search`
    for precision in ("fp32", "bf16"):
        objective = PerplexityObjective(teacher, windows, batch_size=args.micro_batch, precision=precision)
        objective(specs[0])  # warm-up: kernels chosen, memory allocated
        sync(device)
        start = time.perf_counter()
        perplexities = [objective(spec)["perplexity"] for spec in specs]
        seconds = time.perf_counter() - start
        rows[precision] = {"evaluations_per_s": len(specs) / seconds, "perplexities": perplexities}
    worst = max(abs(b / a - 1) for a, b in zip(rows["fp32"]["perplexities"], rows["bf16"]["perplexities"], strict=True))
    return {"candidates": len(specs), "tokens_per_evaluation": int(windows[:, 1:].numel()), "rows": rows,
            "bf16_speedup": rows["bf16"]["evaluations_per_s"] / rows["fp32"]["evaluations_per_s"],
            "max_relative_perplexity_difference": worst}


def test_outcomes(junit: Path | None) -> dict | None:
    """Passed / failed / skipped test names from pytest's --junitxml report, if gpu.sh made one."""
    if junit is None or not junit.is_file():
        return None
    outcomes: dict[str, list[str]] = {"passed": [], "failed": [], "skipped": []}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        kind = next((k for k, tag in (("failed", "failure"), ("failed", "error"), ("skipped", "skipped"))
                     if case.find(tag) is not None), "passed")
        outcomes[kind].append(name)
    return outcomes


def liger_lines(result: dict) -> list[str]:
    """The KD loss alone per kernel, and the training ratio of liger's kernel to the chunked loss."""
    k = result["kd_loss"]
    lines = [f"KD loss alone (forward KL, forward and backward, {k['tokens']} tokens of the two models' hidden states, "
             f"vocab {k['vocab']}, chunks of {k['chunk_tokens']} tokens):", "",
             "| kernel | ms | peak memory above the inputs (GiB) |", "|---|---|---|"]
    for name, r in k["rows"].items():
        memory = f"{r['peak_memory_gib']:.2f}" if r.get("peak_memory_gib") is not None else "-"
        lines.append(f"| {name} | failed: {r['error']} | |" if "error" in r else
                     f"| {name} | {1000 * r['seconds']:.1f} | {memory} |")
    rows = {r["variant"]: r for r in result["training"]}
    liger, chunked = rows.get("eager, liger KD"), rows.get("eager")
    if "liger" not in k["rows"]:
        lines += ["", "liger-kernel is not importable here: the chunked loss only (bench/gpu.sh: WHEELS=DIR)."]
    elif result["setup"]["device"] == "cpu":
        lines += ["", "Training with --kd-kernel liger: not run (it runs on CUDA only)."]
    elif liger and chunked and "error" not in liger:
        lines += ["", "Training tokens/s with the liger KD kernel over the chunked loss (eager): "
                  f"**{liger['tokens_per_s'] / chunked['tokens_per_s']:.2f}x**."]
    return lines


def markdown(result: dict) -> str:
    s = result["setup"]
    lines = []
    if s["dry_run"]:
        lines += ["**Dry run** (tiny shapes, a few steps): checks that the script runs; it measures nothing.", ""]
    tests = result["tests"]
    if tests is None:
        lines += ["CUDA tests: not run (see bench/gpu.sh: pytest was not importable, or this is a dry run).", ""]
    else:
        lines += [f"CUDA tests (tests/test_cuda.py): {len(tests['passed'])} passed, {len(tests['failed'])} failed, "
                  f"{len(tests['skipped'])} skipped." + (f" Failed: {', '.join(tests['failed'])}." if tests["failed"]
                                                          else ""), ""]
    peak = f"device peak {s['peak_flops'] / 1e12:.0f} TFLOP/s dense bf16" if s["peak_flops"] else \
        "device peak unknown: no MFU"
    lines += [f"Training with forward-KL KD on {s['device']}: {s['student']}-shaped student, {s['teacher']}-shaped "
              f"teacher (random weights, vocab {s['vocab']}), batch {s['batch']} x {s['seq']} tokens, micro-batch "
              f"{s['micro_batch']}, {s['steps']} timed steps after {s['warmup']} warm-up steps; {peak}.", "",
              "| variant | tokens/s | MFU | step (s) | warm-up (s) | peak memory (GiB) |", "|---|---|---|---|---|---|"]
    for r in result["training"]:
        if "error" in r:
            lines.append(f"| {r['variant']} | failed: {r['error']} | | | | |")
            continue
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        memory = f"{r['peak_memory_gib']:.1f}" if r["peak_memory_gib"] is not None else "-"
        lines.append(f"| {r['variant']} | {r['tokens_per_s']:,.0f} | {mfu} | {r['step_s']:.3f} | "
                     f"{r['warmup_s']:.1f} | {memory} |")
    lines += ["", *liger_lines(result)]
    q = result["search"]
    lines += ["", f"Search: {q['candidates']} random 50% sub-networks of the {s['teacher']}-shaped teacher, "
              f"{q['tokens_per_evaluation']} tokens per evaluation.", "",
              "| precision | evaluations/s |", "|---|---|"]
    lines += [f"| {name} | {row['evaluations_per_s']:.2f} |" for name, row in q["rows"].items()]
    lines += ["", f"bf16 / fp32 evaluations/s: **{q['bf16_speedup']:.2f}x**; largest relative perplexity difference "
              f"bf16 vs fp32: {q['max_relative_perplexity_difference']:.2%} (random weights: perplexities near the "
              "vocabulary size)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes, two steps, eager only")
    parser.add_argument("--junit", type=Path, help="pytest --junitxml report of the CUDA tests, to record")
    parser.add_argument("--results", type=Path, help="folder for gpu.json / gpu.md (default bench/results)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--loss-repeats", type=int, help="timed calls of the KD loss alone (default: 5, dry run 1)")
    args = parser.parse_args()
    shapes = dict(student="pythia-14m", teacher="pythia-14m", vocab=2048, docs=4, seq=32, batch=2, micro_batch=2,
                  warmup=1, steps=1, eval_tokens=64, candidates=2) if args.dry_run else \
        dict(student="pythia-160m", teacher="pythia-410m", vocab=50304, docs=100, seq=2048, batch=16, micro_batch=8,
             warmup=4, steps=10, eval_tokens=2**16, candidates=8)
    vars(args).update(shapes)
    if args.loss_repeats is None:
        args.loss_repeats = 1 if args.dry_run else 5
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        folders = make_world(work, args.student, args.teacher, vocab_size=args.vocab, n_docs=args.docs)
        device = init_ranks().device
        variants = VARIANTS
        if args.dry_run and device.type == "cpu":  # compiling on a CPU takes minutes; the dry run checks the rest
            variants = {"eager": {}, "activation checkpointing": {"activation_checkpointing": True}}
        if device.type == "cuda" and liger_installed():  # --kd-kernel liger runs on CUDA only
            variants = {"eager": {}, **LIGER_VARIANT} | variants
        result = {"setup": {**shapes, "dry_run": args.dry_run, "device": str(device),
                            "peak_flops": peak_flops(device)},
                  "tests": test_outcomes(args.junit), "search": search(folders, args),
                  "kd_loss": kd_loss(args, device), "training": []}
        for name, settings in variants.items():  # results written after each part: a timeout keeps what was done
            write_results("gpu", result, markdown(result), folder=args.results or RESULTS)
            measure = functools.partial(training, folders, work, name, settings, args)
            result["training"].append(measure() if name not in LIGER_VARIANT else optional_kernel(measure,
                                                                                                  variant=name))
    write_results("gpu", result, markdown(result), folder=args.results or RESULTS)
    print(markdown(result))


if __name__ == "__main__":
    main()
