"""`headstart eval`: perplexity on prepared shards, and zero-shot accuracy on downstream tasks."""

from __future__ import annotations

import argparse

from headstart.eval.tasks import TASKS, check_task_name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder or short name (e.g. smollm2-135m)")
    parser.add_argument("--data", help="data folder written by `headstart prepare`: loss and perplexity on it")
    parser.add_argument("--split", default="validation", choices=["train", "validation"])
    parser.add_argument("--tokens", type=int, default=65536, help="how many tokens to score (default 65536)")
    parser.add_argument("--seq-len", type=int, default=512, help="window length (default 512)")
    parser.add_argument("--tasks", nargs="+", metavar="TASK",
                        help=f"zero-shot multiple-choice tasks ({', '.join(TASKS)}); needs "
                             "`headstart assets --only evalsets`")
    parser.add_argument("--limit", type=int, default=500, help="items per task, the first ones (0: all; default 500)")
    parser.add_argument("--backend", default="headstart", choices=["headstart", "lm-eval"],
                        help="who scores --tasks: headstart (default) or lm-evaluation-harness itself (pip install "
                             "lm-eval), both on the offline task files")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def check_arguments(args: argparse.Namespace) -> None:
    """What can be checked before the model is loaded (`headstart run` checks it before any step)."""
    from headstart.errors import UsageError

    if not args.data and not args.tasks:
        raise UsageError("nothing to evaluate", "give --data (perplexity) and/or --tasks (downstream accuracy)")
    for task in args.tasks or []:
        check_task_name(task)
    if getattr(args, "backend", "headstart") == "lm-eval":
        from headstart.eval.harness import check_lm_eval_tasks

        check_lm_eval_tasks(args.tasks or [])


def run(args: argparse.Namespace) -> dict:
    from headstart.eval import evaluate_windows, scoring_windows
    from headstart.eval.downstream import evaluate_task
    from headstart.model import load_model
    from headstart.runtime import pick_device

    check_arguments(args)
    device = pick_device(args.device)
    model = load_model(args.model).to(device) if args.data or args.backend == "headstart" else None
    summary: dict = {"model": str(args.model)}
    if args.data:
        windows = scoring_windows(model, args.data, args.split, args.tokens, args.seq_len,
                                  what=f"model {args.model}")
        seq_len = windows.shape[1] - 1
        result = evaluate_windows(model, windows, args.batch_size, progress=True)
        print(f"{args.model} on {args.data} ({args.split}, {result.tokens} tokens, seq {seq_len}): "
              f"loss {result.loss:.4f}  perplexity {result.perplexity:.2f}  {result.tokens_per_s:.0f} tokens/s")
        summary |= {"data": str(args.data), "split": args.split, "seq_len": seq_len, **result.to_dict()}
    if args.tasks and args.backend == "lm-eval":
        from headstart.eval.harness import evaluate_with_lm_eval
        from headstart.model import resolve_model_dir

        results = evaluate_with_lm_eval(resolve_model_dir(args.model), args.tasks, args.limit or None,
                                        args.batch_size, str(device))
        summary["tasks"] = {task: {k: v for k, v in r.items() if k != "samples"} for task, r in results.items()}
        for task, r in summary["tasks"].items():
            print(f"{args.model} on {task} ({r['items']} items, zero-shot, lm-eval): acc {r['acc']:.3f}  "
                  f"acc_norm {r['acc_norm']:.3f}  acc_bytes {r['acc_bytes']:.3f}")
    elif args.tasks:
        summary["tasks"] = {}
        for task in args.tasks:
            result = evaluate_task(model, task, args.limit or None, args.batch_size)
            print(f"{args.model} on {task} ({result.items} items, zero-shot): acc {result.acc:.3f}  "
                  f"acc_norm {result.acc_norm:.3f}  acc_bytes {result.acc_bytes:.3f}  (chance {result.chance:.3f})")
            summary["tasks"][task] = result.to_dict()
    return summary
