"""`headstart extract`: cut a sub-network out of a teacher into a standalone Hugging Face folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

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
                        help="Hugging Face folder to write; an earlier headstart model there is replaced atomically, "
                        "any other folder only with --overwrite")
    add_overwrite_argument(parser)
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="weight dtype of the folder (default: the teacher's)")
    parser.add_argument("--push-to-hub", metavar="REPO", help=PUSH_HELP)


def check_arguments(args: argparse.Namespace) -> None:
    """What can be checked before the teacher is loaded (`headstart run` checks it before any step): --out, and
    a --push-to-hub repo id."""
    from headstart.model.hub import check_repo_id

    check_model_out(args)
    if args.push_to_hub:
        check_repo_id(args.push_to_hub)


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out folder that headstart did not write (never a file)")


def is_headstart_model(folder: Path) -> bool:
    """A model folder headstart wrote (its config.json says so): what extract and init may replace unasked."""
    try:
        return "headstart_version" in json.loads((folder / "config.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


def check_model_out(args: argparse.Namespace) -> None:
    """Before any work: --out can be written, and replacing what is there was asked for or is ours."""
    from headstart.atomic import check_out_replaceable

    check_out_replaceable(args.out, "model folder headstart wrote", is_headstart_model, overwrite=args.overwrite)


def run(args: argparse.Namespace) -> dict:
    from headstart.errors import UsageError
    from headstart.model import load_model
    from headstart.model.families import exportable_as_hf
    from headstart.model.hub import push_to_hub
    from headstart.subnet import extract_to_folder, param_count, student_config
    from headstart.subnet.spaces import human
    from headstart.subnet.spec import load_spec

    check_arguments(args)
    teacher = load_model(args.teacher)
    if Path(args.out).resolve() == Path(teacher.source_dir).resolve():
        raise UsageError(f"--out {args.out} is the teacher's own folder", "choose another --out for the student")
    spec = load_spec(args.spec, teacher.config)
    out = extract_to_folder(teacher, spec, args.out, dtype=DTYPES.get(args.dtype))
    n, total = param_count(teacher.config, spec), param_count(teacher.config)
    student = student_config(teacher.config, spec)
    stock = exportable_as_hf(student)
    why = "layer-wise widths" if not student.is_uniform else f"a shape {teacher.config.family}'s class cannot hold"
    kind = f"stock {teacher.config.family} class" if stock else f"headstart remote-code class ({why})"
    print(f"wrote {out}: {human(n)} parameters ({100 * n / total:.1f}% of the teacher), {spec.summary()}; {kind}")
    if args.push_to_hub:
        print(f"pushed to {push_to_hub(out, args.push_to_hub)}")
    return {"out": str(out), "params": n, "teacher_params": total, "stock_class": stock,
            "spec": spec.to_dict(teacher.config)}
