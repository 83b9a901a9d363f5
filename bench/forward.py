"""Forward throughput (tokens/s) of headstart's decoder against transformers' own, side by side.

Two models: the real SmolLM2-135M (when fetched; `headstart assets`) and a random model of
Pythia-160M's shape. Both implementations run the same batch in one process.
"""

from __future__ import annotations

import argparse

import torch
import transformers
from common import best_seconds, write_results

from headstart.errors import UsageError
from headstart.model import load_model
from headstart.model.checkpoint import resolve_model_dir


def pythia_160m_shape(path) -> None:
    cfg = transformers.GPTNeoXConfig(vocab_size=50304, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                     intermediate_size=3072, rotary_pct=0.25, max_position_embeddings=2048)
    torch.manual_seed(0)
    transformers.GPTNeoXForCausalLM(cfg).save_pretrained(path)


def compare(name: str, model_dir, batch: int, seq: int, repeats: int) -> dict:
    ours = load_model(model_dir)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokens = torch.randint(0, ours.config.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (ours(tokens) - theirs(tokens).logits).abs().max().item()
        t = best_seconds({"ours": lambda: ours(tokens), "theirs": lambda: theirs(tokens).logits}, repeats)
        t_ours, t_theirs = t["ours"], t["theirs"]
    n = batch * seq
    return {"model": name, "params": sum(p.numel() for p in ours.parameters()), "batch": batch, "seq": seq,
            "headstart_tokens_per_s": n / t_ours, "transformers_tokens_per_s": n / t_theirs,
            "ratio": t_theirs / t_ours, "max_abs_logit_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", default="/tmp/headstart-bench-forward")
    args = parser.parse_args()
    rows = []
    pythia = f"{args.work}/pythia-160m-shape"
    pythia_160m_shape(pythia)
    rows.append(compare("Pythia-160M shape (random)", pythia, args.batch, args.seq, args.repeats))
    try:
        rows.append(compare("SmolLM2-135M", resolve_model_dir("smollm2-135m"), args.batch, args.seq, args.repeats))
    except UsageError as err:
        print(f"skipping SmolLM2-135M: {err}")
    table = ["| model | params | batch x seq | headstart tok/s | transformers tok/s | ratio | max abs logit diff |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['model']} | {r['params'] / 1e6:.1f}M | {r['batch']}x{r['seq']} | "
                     f"{r['headstart_tokens_per_s']:.0f} | {r['transformers_tokens_per_s']:.0f} | "
                     f"{r['ratio']:.2f}x | {r['max_abs_logit_diff']:.1e} |")
    body = ("Forward pass, fp32, no grad; the best of the repeats for each, taking turns in one process on "
            "the same batch. "
            "ratio = transformers time / headstart time (above 1: headstart is faster).\n\n" + "\n".join(table))
    write_results("forward", {"rows": rows}, body)
    print(body)


if __name__ == "__main__":
    main()
