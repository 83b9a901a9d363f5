"""`headstart space`: the size of a search space over a teacher, and a few samples in a budget."""

from __future__ import annotations

import argparse
import math
import random


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from headstart.subnet.spaces import LAYER_SELECTIONS, SPACES

    parser.add_argument("--teacher", required=True, metavar="T", help="teacher model folder or short name")
    parser.add_argument("--space", required=True, choices=list(SPACES), help="which search space")
    parser.add_argument("--budget", metavar="N",
                        help="parameter bin: 50M or 50%% (of the teacher) +- 2%%, or LO:HI (default: no bin)")
    parser.add_argument("--layers", choices=LAYER_SELECTIONS,
                        help="keep the first k layers or any k (default: first for coarse spaces, else subset)")
    parser.add_argument("--multiple", type=int, default=8, help="embedding and MLP widths are multiples of it")
    parser.add_argument("--samples", type=int, default=5, help="how many samples to show (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seq-len", type=int, default=2048, help="sequence length for FLOPs per token")


def run(args: argparse.Namespace) -> dict:
    from headstart.model.checkpoint import decoder_config, read_config, resolve_model_dir
    from headstart.subnet import flops_per_token, make_space, param_count, parse_budget
    from headstart.subnet.spaces import human

    teacher = decoder_config(read_config(resolve_model_dir(args.teacher)))
    space = make_space(args.space, teacher, layers=args.layers, multiple=args.multiple)
    total = param_count(teacher)
    budget = parse_budget(args.budget, total) if args.budget else None
    size, (lo, hi) = space.size(), space.param_range()
    print(f"space {space.name} over {args.teacher} ({human(total)} parameters): {space.layers} layers, "
          f"widths in multiples of {space.multiple}")
    print(f"  {_size_text(size)} sub-networks, from {human(lo)} to {human(hi)} parameters")
    rng = random.Random(args.seed)
    samples = []
    for i in range(args.samples):
        spec = space.sample(rng, budget)
        n = param_count(teacher, spec)
        flops = flops_per_token(teacher, spec, args.seq_len)
        print(f"  sample {i + 1}: {human(n)} params ({100 * n / total:.1f}%), {human(flops)} FLOPs/token "
              f"@{args.seq_len}: {spec.summary()}")
        samples.append({"params": n, "flops_per_token": flops, "spec": spec.to_dict(teacher)})
    if budget:
        print(f"  (samples drawn in the bin {budget})")
    return {"space": space.name, "layers": space.layers, "multiple": space.multiple,
            "size": size if size < 10**15 else None, "log10_size": math.log10(size), "params_min": lo,
            "params_max": hi, "teacher_params": total,
            "budget": [budget.lo, budget.hi] if budget else None, "samples": samples}


def _size_text(size: int) -> str:
    return f"{size:,}" if size < 10**12 else f"about 10^{math.log10(size):.1f}"
