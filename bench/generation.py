"""Greedy generation from an exported student folder with and without the KV cache, in plain transformers.

    python bench/generation.py FOLDER [--new-tokens 128] [--threads 1]

Loads FOLDER as a user would (AutoModelForCausalLM, trust_remote_code for layer-wise students),
generates the same greedy continuation both ways, checks the tokens agree and prints tokens/s.
"""

from __future__ import annotations

import argparse
import time

import torch
import transformers

PROMPT = "It is a truth universally acknowledged, that"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tok = transformers.AutoTokenizer.from_pretrained(args.folder, trust_remote_code=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(args.folder, trust_remote_code=True).eval()
    ids = tok(PROMPT, return_tensors="pt").input_ids
    outputs = {}
    for use_cache in (True, False):
        start = time.perf_counter()
        outputs[use_cache] = model.generate(ids, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                            do_sample=False, use_cache=use_cache)
        seconds = time.perf_counter() - start
        print(f"{type(model).__name__}, use_cache={use_cache}: {args.new_tokens} tokens in {seconds:.2f} s "
              f"({args.new_tokens / seconds:.0f} tokens/s, {args.threads} thread(s))")
    print("same tokens with and without the cache:", torch.equal(outputs[True], outputs[False]))


if __name__ == "__main__":
    main()
