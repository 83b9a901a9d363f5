"""`headstart extract`: cut a sub-network out of a teacher into a standalone Hugging Face folder."""

from __future__ import annotations

import argparse

import torch

from headstart.model.hub import PUSH_HELP

SPEC_HELP = """sub-network spec (JSON), or a JSON file holding one under "spec". A count keeps the first n, a list
names indices, widths at the top apply to every kept layer: {"embd": 384, "layers": 20, "heads": 6, "kv": 2,
"mlp": 768}. Per layer: {"embd": [...], "layers": [{"layer": 0, "heads": [0, 1, 3, 4], "kv": [0, 1], "mlp": [...]},
...]}. Query head h is in key/value group h // (heads/groups); every kept group keeps the same number of heads."""
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", required=True, metavar="T", help="teacher model folder or short name")
    parser.add_argument("--spec", required=True, metavar="FILE", help=SPEC_HELP)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="Hugging Face folder to write (replaced atomically)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="weight dtype of the folder (default: the teacher's)")
    parser.add_argument("--push-to-hub", metavar="REPO", help=PUSH_HELP)


def check_arguments(args: argparse.Namespace) -> None:
    """What can be checked before the teacher is loaded (`headstart run` checks it before any step)."""
    from headstart.model.hub import check_repo_id

    if args.push_to_hub:
        check_repo_id(args.push_to_hub)


def run(args: argparse.Namespace) -> dict:
    from headstart.model import load_model
    from headstart.model.families import exportable_as_hf
    from headstart.model.hub import push_to_hub
    from headstart.subnet import extract_to_folder, param_count, student_config
    from headstart.subnet.spaces import human
    from headstart.subnet.spec import load_spec

    check_arguments(args)
    teacher = load_model(args.teacher)
    spec = load_spec(args.spec, teacher.config)
    out = extract_to_folder(teacher, spec, args.out, dtype=DTYPES.get(args.dtype))
    n, total = param_count(teacher.config, spec), param_count(teacher.config)
    stock = exportable_as_hf(student_config(teacher.config, spec))
    kind = f"stock {teacher.config.family} class" if stock else "headstart remote-code class (layer-wise)"
    print(f"wrote {out}: {human(n)} parameters ({100 * n / total:.1f}% of the teacher), {spec.summary()}; {kind}")
    if args.push_to_hub:
        print(f"pushed to {push_to_hub(out, args.push_to_hub)}")
    return {"out": str(out), "params": n, "teacher_params": total, "stock_class": stock,
            "spec": spec.to_dict(teacher.config)}
