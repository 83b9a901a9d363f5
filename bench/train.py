"""Training throughput of headstart against a plain transformers loop, and the memory of chunked vs naive KD.

One run, side by side, on the same batches of a Pythia-shaped student (random weights):
  (a) headstart's training step (train_step: chunked CE, AdamW, clipping);
  (b) a plain transformers loop: AutoModelForCausalLM of the same folder, full logits, CE, AdamW, clipping;
  (c) headstart's step with forward-KL distillation from a larger Pythia-shaped teacher.
Steps are interleaved (a, b, c, a, b, c, ...) so that load from other processes hits all three
alike; the median step time counts. Each also gets its share of the machine's measured fp32
matmul throughput (FLOPs per token from headstart.subnet.counts: 3x forward for the student,
1x for the teacher).

Memory: peak resident memory (ru_maxrss) of one KD loss forward + backward at vocabulary 49152,
sequence 2048, width 576 (SmolLM2's), over the memory already held by its inputs, each variant in
a fresh subprocess: naive full logits against the chunked loss at two chunk sizes.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from common import write_results
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from headstart.data.prepare import prepare_data
from headstart.settings import make
from headstart.subnet.counts import flops_per_token
from headstart.train.config import TrainConfig
from headstart.train.distributed import init_ranks
from headstart.train.inputs import load_inputs
from headstart.train.loop import build_run, train_step
from headstart.train.losses import TeacherHidden, chunked_losses, parse_kd_loss

SHAPES = {  # Pythia's shapes (vocab 50304, rotary 25%, parallel residual)
    "pythia-14m": dict(hidden_size=128, num_hidden_layers=6, num_attention_heads=4, intermediate_size=512),
    "pythia-70m": dict(hidden_size=512, num_hidden_layers=6, num_attention_heads=8, intermediate_size=2048),
    "pythia-160m": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "pythia-410m": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
N_WORDS = 2000


def make_world(work: Path, student: str, teacher: str, seed: int = 0, vocab_size: int = 50304,
               n_docs: int = 100) -> dict[str, Path]:
    """A word-level tokenizer, ~n_docs x 3000 tokens of random text, and student/teacher folders (random weights
    of the named shapes, vocab_size rows) saved with the tokenizer."""
    vocab = {"<|endoftext|>": 0, "[UNK]": 1} | {f"w{i}": i + 2 for i in range(N_WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="<|endoftext|>")
    hf_tok.save_pretrained(work / "tokenizer")
    rng = np.random.default_rng(seed)
    docs = [" ".join(f"w{i}" for i in rng.integers(0, N_WORDS, 3000)) for _ in range(n_docs)]
    (work / "corpus.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs))
    prepare_data([str(work / "corpus.jsonl")], work / "data", tokenizer=str(work / "tokenizer"), val_fraction=0.05)
    folders = {"data": work / "data"}
    for role, shape in (("student", student), ("teacher", teacher)):
        torch.manual_seed(seed)
        cfg = transformers.GPTNeoXConfig(vocab_size=vocab_size, rotary_pct=0.25, max_position_embeddings=2048,
                                         **SHAPES[shape])
        transformers.GPTNeoXForCausalLM(cfg).save_pretrained(work / role)
        hf_tok.save_pretrained(work / role)
        folders[role] = work / role
    return folders


def headstart_step(folders: dict[str, Path], work: Path, batch: int, seq: int, kd: bool):
    fields = {"student": folders["student"], "data": folders["data"], "out": work / ("run-kd" if kd else "run"),
              "tokens": 10**9, "seq_len": seq, "batch_size": batch, "micro_batch_size": batch}
    if kd:
        fields |= {"teacher": folders["teacher"], "kd": "forward_kl"}
    ranks = init_ranks()
    run = build_run(make(TrainConfig, fields), ranks, load_inputs(make(TrainConfig, fields), ranks))
    return run, lambda i: train_step(run, i)


def transformers_step(folders: dict[str, Path], windows_of):
    """The loop people write with transformers: full logits, F.cross_entropy, AdamW, clipping."""
    model = transformers.AutoModelForCausalLM.from_pretrained(folders["student"], dtype=torch.float32).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)

    def step(i: int) -> None:
        windows = windows_of(i)
        logits = model(input_ids=windows[:, :-1]).logits
        loss = F.cross_entropy(logits.flatten(0, 1).float(), windows[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def matmul_flops_per_s(n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats + 2):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def throughput(args: argparse.Namespace) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    folders = make_world(work, args.student, args.teacher)
    run_a, step_a = headstart_step(folders, work, args.batch, args.seq, kd=False)
    run_c, step_c = headstart_step(folders, work, args.batch, args.seq, kd=True)
    windows_of = lambda i: run_a.inputs.train.batch(i, args.batch, seed=0)  # noqa: E731 (same batches as (a))
    step_b = transformers_step(folders, windows_of)
    variants = {"a_headstart": step_a, "b_transformers": step_b, "c_headstart_kd": step_c}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(args.steps + 1):  # step 0 warms up
        for name, step in variants.items():
            start = time.perf_counter()
            step(i)
            if i:
                times[name].append(time.perf_counter() - start)
    tokens = args.batch * args.seq
    peak = matmul_flops_per_s()
    student_fpt = flops_per_token(run_a.inputs.student.config, seq_len=args.seq)
    teacher_fpt = flops_per_token(run_c.inputs.teacher.config, seq_len=args.seq)
    flops = {"a_headstart": 3 * student_fpt, "b_transformers": 3 * student_fpt,
             "c_headstart_kd": 3 * student_fpt + teacher_fpt}
    rows = {}
    for name, ts in times.items():
        seconds = statistics.median(ts)
        rows[name] = {"median_step_s": seconds, "tokens_per_s": tokens / seconds,
                      "model_flops_per_token": flops[name],
                      "fraction_of_matmul_peak": tokens / seconds * flops[name] / peak, "step_times_s": ts}
    return {"student": args.student, "teacher": args.teacher, "batch": args.batch, "seq": args.seq,
            "steps": args.steps, "threads": torch.get_num_threads(), "matmul_peak_flops_per_s": peak, "variants": rows,
            "ratio_headstart_vs_transformers": rows["a_headstart"]["tokens_per_s"]
            / rows["b_transformers"]["tokens_per_s"],
            "kd_cost_vs_ce": rows["a_headstart"]["tokens_per_s"] / rows["c_headstart_kd"]["tokens_per_s"]}


def memory_probe(variant: str, vocab: int, seq: int, width: int) -> dict:
    """Run in a fresh process: extra peak RSS of one forward-KL (+CE) loss forward and backward."""
    g = torch.Generator().manual_seed(0)
    s_hidden = torch.randn(seq, width, generator=g, requires_grad=True)
    s_head = (torch.randn(vocab, width, generator=g) * 0.02).requires_grad_()
    t_hidden, t_head = torch.randn(seq, width, generator=g), torch.randn(vocab, width, generator=g) * 0.02
    targets = torch.randint(0, vocab, (seq,), generator=g)
    kd = parse_kd_loss("forward_kl", 1.0, 0.5, 0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if variant == "naive":
        s_logits, t_logits = s_hidden @ s_head.T, t_hidden @ t_head.T
        log_p, log_q = F.log_softmax(t_logits, -1), F.log_softmax(s_logits, -1)
        kl = F.kl_div(log_q, log_p, log_target=True, reduction="sum")
        loss = 0.5 * F.cross_entropy(s_logits, targets, reduction="sum") + 0.5 * kl
    else:
        chunk = int(variant.split(":")[1])
        loss = chunked_losses(s_hidden, s_head, targets, kd, TeacherHidden(t_hidden, t_head), chunk).objective
    loss.backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"variant": variant, "extra_peak_mb": (peak - before) / 1024, "seconds": seconds, "loss": loss.item()}


def memory(vocab: int, seq: int, width: int) -> list[dict]:
    rows = []
    for variant in ("naive", "chunked:1024", "chunked:256"):
        cmd = [sys.executable, __file__, "--memory-probe", variant, "--vocab", str(vocab), "--seq", str(seq),
               "--width", str(width)]
        rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1]))
    logits_mb = seq * vocab * 4 / 2**20
    for row in rows:
        row["in_logit_tensors"] = row["extra_peak_mb"] / logits_mb
    return rows


def markdown(result: dict) -> str:
    t = result["throughput"]
    names = {"a_headstart": "(a) headstart train_step, CE", "b_transformers": "(b) plain transformers loop, CE",
             "c_headstart_kd": f"(c) headstart train_step, forward-KL KD from {t['teacher']}"}
    lines = [f"Student: random {t['student']}-shaped GPT-NeoX (vocab 50304); batch {t['batch']} x {t['seq']} tokens, "
             f"fp32, {t['threads']} torch thread(s), median of {t['steps']} interleaved steps after one warm-up each. "
             f"Measured fp32 matmul peak on as many threads: {t['matmul_peak_flops_per_s'] / 1e9:.0f} GFLOP/s.", "",
             "| variant | median step (s) | tokens/s | model GFLOP/token | share of matmul peak |",
             "|---|---|---|---|---|"]
    for key, row in t["variants"].items():
        lines.append(f"| {names[key]} | {row['median_step_s']:.3f} | {row['tokens_per_s']:.0f} | "
                     f"{row['model_flops_per_token'] / 1e9:.3f} | {row['fraction_of_matmul_peak']:.0%} |")
    lines += ["", f"headstart / transformers tokens/s: **{t['ratio_headstart_vs_transformers']:.2f}x**; "
              f"KD slows headstart's step by {t['kd_cost_vs_ce']:.2f}x (teacher forward + KD over the vocabulary).",
              "", f"KD loss memory (forward KL + CE, forward and backward), vocab {result['memory_setup']['vocab']}, "
              f"seq {result['memory_setup']['seq']}, width {result['memory_setup']['width']}, extra peak RSS over "
              "its inputs, each in a fresh process (resource.getrusage ru_maxrss):", "",
              "| loss | extra peak MB | in [seq, vocab] fp32 tensors | seconds |", "|---|---|---|---|"]
    for row in result["memory"]:
        lines.append(f"| {row['variant']} | {row['extra_peak_mb']:.0f} | {row['in_logit_tensors']:.1f} | "
                     f"{row['seconds']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="pythia-70m", choices=SHAPES)
    parser.add_argument("--teacher", default="pythia-160m", choices=SHAPES)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=49152, help="memory part: vocabulary")
    parser.add_argument("--width", type=int, default=576, help="memory part: hidden width")
    parser.add_argument("--memory-seq", type=int, default=2048, help="memory part: sequence length")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's); 1 is steadier on a busy machine")
    parser.add_argument("--work", default="/tmp/headstart-bench-train")
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.vocab, args.seq, args.width)))
        return
    result = {"memory_setup": {"vocab": args.vocab, "seq": args.memory_seq, "width": args.width},
              "memory": memory(args.vocab, args.memory_seq, args.width), "throughput": throughput(args)}
    body = markdown(result)
    write_results("train", result, body)
    print(body)


if __name__ == "__main__":
    main()
