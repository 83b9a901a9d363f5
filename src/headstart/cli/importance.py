"""`headstart importance`: score every unit of a teacher, and optionally write it re-ordered by score."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", required=True, metavar="T", help="teacher model folder or short name")
    parser.add_argument("--data", required=True, metavar="D", help="calibration data folder (`headstart prepare`)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder to write importance.json (and teacher/) into, replaced atomically")
    parser.add_argument("--split", default="train", choices=["train", "validation"],
                        help="split to calibrate on (default train, so validation stays unseen)")
    parser.add_argument("--tokens", type=int, default=65536, help="calibration tokens (default 65536)")
    parser.add_argument("--seq-len", type=int, default=512, help="window length (default 512)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--write-teacher", action="store_true",
                        help="also write DIR/teacher: the teacher with units sorted by score (same function), "
                             "so that first-n slicing keeps the most important units")
    parser.add_argument("--order", choices=["activation", "magnitude"], default="activation",
                        help="which score orders the written teacher (default activation)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def run(args: argparse.Namespace) -> dict:
    from headstart.atomic import atomic_dir, check_out_replaceable
    from headstart.eval import scoring_windows
    from headstart.model import load_model, save_model
    from headstart.runtime import pick_device
    from headstart.subnet.importance import activation_importance, magnitude_importance, permute_teacher

    check_out_replaceable(args.out, "folder of `headstart importance`", lambda p: (p / "importance.json").is_file())
    teacher = load_model(args.teacher)
    windows = scoring_windows(teacher, args.data, args.split, args.tokens, args.seq_len, what=f"teacher {args.teacher}")
    seq_len = windows.shape[1] - 1
    teacher = teacher.to(pick_device(args.device))
    scores = {"activation": activation_importance(teacher, windows, args.batch_size, progress=True),
              "magnitude": magnitude_importance(teacher)}
    record = {"teacher": str(teacher.source_dir), "data": str(args.data), "split": args.split,
              "tokens": int(windows[:, :-1].numel()), "seq_len": seq_len,
              "teacher_written": "teacher" if args.write_teacher else None, "order": args.order,
              **{name: s.to_dict(teacher.config) for name, s in scores.items()}}
    with atomic_dir(args.out) as tmp:
        (tmp / "importance.json").write_text(json.dumps(record) + "\n")
        if args.write_teacher:
            save_model(permute_teacher(teacher, scores[args.order]).cpu(), tmp / "teacher",
                       tokenizer_dir=teacher.source_dir)
    act = scores["activation"]
    least = sorted(range(teacher.config.n_layer), key=lambda i: float(act.layers[i]))[:3]
    written = f" and {Path(args.out) / 'teacher'} (sorted by {args.order} score)" if args.write_teacher else ""
    print(f"wrote {Path(args.out) / 'importance.json'}{written}: scored on {record['tokens']} tokens; "
          f"layers that change the residual least: {least}")
    return {"out": str(args.out), "tokens": record["tokens"], "least_important_layers": least,
            "teacher": str(Path(args.out) / "teacher") if args.write_teacher else None}
