"""`headstart search`: the best sub-network of a teacher under a parameter budget."""

from __future__ import annotations

import argparse
from pathlib import Path

from headstart.search.strategies import STRATEGIES, StrategySettings

_DEFAULTS = StrategySettings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", required=True, metavar="T", help="teacher model folder or short name")
    parser.add_argument("--data", required=True, metavar="D", help="data folder (`headstart prepare`) to score on")
    parser.add_argument("--space", default="fine-layerwise",
                        help="coarse-uniform, coarse-layerwise, fine-uniform, fine-layerwise or layers")
    parser.add_argument("--budget", required=True, help="parameters: 50M, 50%% of the teacher, or a bin LO:HI")
    parser.add_argument("--strategy", default="evolution",
                        help=f"{', '.join(STRATEGIES)} (oneshot: no search, the importance seed or the first-k anchor)")
    parser.add_argument("--evals", type=int, default=100, help="candidates to evaluate (default 100)")
    parser.add_argument("--out", required=True, metavar="DIR", help="search folder; an existing one is resumed")
    parser.add_argument("--objective", default="perplexity", choices=["perplexity", "importance", "magnitude"],
                        help="perplexity of the untrained sub-network (the paper's), or a proxy")
    parser.add_argument("--importance", metavar="FILE", help="importance.json (`headstart importance` on this "
                        "teacher): seeds the search with the sub-network its scores choose, and is the proxy of "
                        "--objective importance")
    parser.add_argument("--cost", default="params", choices=["params", "flops", "latency"],
                        help="what the Pareto front trades perplexity against")
    parser.add_argument("--tokens", type=int, default=8192, help="validation tokens per candidate (default 8192)")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--layers", choices=["first", "subset"], help="which layers may be kept (space default)")
    parser.add_argument("--multiple", type=int, default=8, help="widths are multiples of this (default 8)")
    parser.add_argument("--population", type=int, default=_DEFAULTS.population)
    parser.add_argument("--tournament", type=int, default=_DEFAULTS.tournament)
    parser.add_argument("--survival", choices=["tournament", "aging"], default=_DEFAULTS.survival)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (under torchrun: each rank's)")


def check_arguments(args: argparse.Namespace) -> None:
    """What can be checked before the teacher is loaded (`headstart run` checks it before any step)."""
    from headstart.atomic import check_out_replaceable
    from headstart.errors import UsageError
    from headstart.search.journal import JOURNAL
    from headstart.search.run import check_names

    check_names(args.strategy, args.cost, args.space)
    for flag in ("evals", "tokens", "seq_len", "batch_size", "population", "tournament", "multiple"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}",
                             "give a positive number")
    check_out_replaceable(args.out, "search folder (it has no journal.jsonl)", lambda p: (p / JOURNAL).is_file())


def run(args: argparse.Namespace) -> dict:
    from headstart.data import data_identity, load_manifest
    from headstart.errors import UsageError
    from headstart.eval import scoring_windows
    from headstart.model import load_model, weights_fingerprint
    from headstart.runtime import pick_device
    from headstart.search import PerplexityObjective, ProxyObjective, SearchConfig, run_search
    from headstart.search.run import importance_seed
    from headstart.subnet import make_space, param_count, parse_budget
    from headstart.subnet.importance import Importance, magnitude_importance
    from headstart.train.distributed import close_ranks, init_ranks

    check_arguments(args)
    if args.objective == "importance" and not args.importance:
        raise UsageError("--objective importance needs the scores", "pass --importance OUT/importance.json "
                         "written by `headstart importance`")
    ranks = init_ranks()
    try:
        teacher = load_model(args.teacher)
        space = make_space(args.space, teacher.config, layers=args.layers, multiple=args.multiple)
        budget = parse_budget(args.budget, param_count(teacher.config))
        space.check_budget(budget)
        windows = scoring_windows(teacher, args.data, "validation", args.tokens, args.seq_len,
                                  what=f"teacher {args.teacher}")
        device = ranks.device if ranks.is_distributed else pick_device(args.device)
        teacher = teacher.to(device)
        cfg = SearchConfig(space=args.space, budget=args.budget, strategy=args.strategy, evals=args.evals,
                           objective=args.objective, cost=args.cost, tokens=args.tokens,
                           seq_len=windows.shape[1] - 1, batch_size=args.batch_size, layers=args.layers,
                           multiple=args.multiple, seed=args.seed,
                           settings=StrategySettings(population=args.population, tournament=args.tournament,
                                                     survival=args.survival))
        scores = _load_importance(args.importance, Importance) if args.importance else None
        if args.objective == "perplexity":
            objective = PerplexityObjective(teacher, windows, args.batch_size)
        elif args.objective == "magnitude":
            objective = ProxyObjective(teacher.config, magnitude_importance(teacher))
        else:
            objective = ProxyObjective(teacher.config, scores)
        seeds = importance_seed(space, budget, scores, args.seed) if scores is not None else ()
        header = {"teacher": str(teacher.source_dir), "teacher_weights": weights_fingerprint(teacher),
                  "data": str(Path(args.data).resolve()), "data_identity": data_identity(load_manifest(args.data)),
                  "budget": [budget.lo, budget.hi], **cfg.to_dict()}
        header["importance"] = str(Path(args.importance).resolve()) if args.importance else None
        summary = run_search(teacher, space, budget, objective, cfg, args.out, header, ranks.rank, ranks.world_size,
                             seeds=seeds)
    finally:
        close_ranks(ranks)
    best = summary["best"]
    shown = f"perplexity {best['perplexity']:.2f}" if "perplexity" in best else f"objective {best['loss']:.4f}"
    print(f"best of {summary['evaluations']} ({summary['replayed']} from the journal): {shown} at "
          f"{best['params'] / 1e6:.2f}M parameters -> {Path(args.out) / 'best.json'}")
    return {"out": str(args.out), **{k: summary[k] for k in ("evaluations", "replayed", "best")},
            "pareto_size": len(summary["pareto"])}


def _load_importance(path: str, importance_cls):
    import json

    from headstart.errors import UsageError

    file = Path(path)
    try:
        return importance_cls.from_dict(json.loads(file.read_text())["activation"])
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise UsageError(f"{file} is not an importance.json ({type(err).__name__})",
                         "write it with `headstart importance --teacher T --data D --out DIR`") from None
