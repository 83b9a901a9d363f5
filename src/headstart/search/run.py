"""One search, start to finish: objective, journal, strategy, outputs (best.json, pareto.json, figures).

Under torchrun, every rank holds the teacher and the evaluation tokens; the candidates of each
batch are dealt out over the ranks and their results gathered, and rank 0 writes the journal.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.distributed as dist
from tqdm import tqdm

from headstart.atomic import write_json_atomic
from headstart.errors import UsageError
from headstart.model.decoder import Decoder
from headstart.progress import progress_bar
from headstart.search.journal import JOURNAL, Journal, spec_key
from headstart.search.pareto import non_dominated
from headstart.search.strategies import STRATEGIES, Candidate, Seeds, StrategySettings, first_k_anchor
from headstart.subnet import Budget, SearchSpace, SubnetSpec, flops_per_token, param_count, spec_latency
from headstart.subnet.importance import Importance, importance_spec, top_layers
from headstart.subnet.spaces import check_space_name

COSTS = ("params", "flops", "latency")


@dataclass(frozen=True)
class SearchConfig:
    space: str = "fine-layerwise"
    budget: str = "50%"
    strategy: str = "evolution"
    evals: int = 100
    objective: str = "perplexity"  # perplexity | importance | magnitude
    cost: str = "params"  # what the Pareto front trades loss against: params | flops | latency
    tokens: int = 8192  # validation tokens per candidate, the same for every one
    seq_len: int = 512
    batch_size: int = 8
    layers: str | None = None  # first | subset (default: the space's own)
    multiple: int = 8
    seed: int = 0
    settings: StrategySettings = field(default_factory=StrategySettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class JournaledEvaluator:
    """Evaluates candidates at most once each, spread over the ranks, recording every result."""

    def __init__(self, objective, teacher: Decoder, space: SearchSpace, journal: Journal | None, cfg: SearchConfig,
                 rank: int = 0, world_size: int = 1, progress: tqdm | None = None) -> None:
        self.objective, self.teacher, self.space, self.journal, self.cfg = objective, teacher, space, journal, cfg
        self.rank, self.world_size, self.progress = rank, world_size, progress
        self.asked: dict[str, dict[str, Any]] = {}  # the results this run has reached, in order
        self.replayed = 0

    def seen(self, spec: SubnetSpec) -> bool:
        return spec_key(spec) in self.asked

    @property
    def remaining(self) -> int:
        return self.cfg.evals - len(self.asked)

    def cost(self, spec: SubnetSpec) -> float:
        if self.cfg.cost == "flops":
            return float(flops_per_token(self.teacher.config, spec, self.cfg.seq_len))
        if self.cfg.cost == "latency":
            return spec_latency(self.teacher, spec, seq_len=self.cfg.seq_len).seconds
        return float(param_count(self.teacher.config, spec))

    def _evaluate(self, spec: SubnetSpec) -> dict[str, Any]:
        start = time.perf_counter()
        result = self.objective(spec)
        return {**result, "cost": self.cost(spec), "seconds": time.perf_counter() - start,
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def _evaluate_in_turns(self, specs: list[SubnetSpec], todo: list[int]) -> Iterator[tuple[int, dict[str, Any]]]:
        """(index, result) of every spec in `todo`, one per rank at a time, as soon as it is known: so a
        kill loses only the candidates in flight, and progress moves with every candidate."""
        for start in range(0, len(todo), self.world_size):
            turn = todo[start:start + self.world_size]
            mine = {turn[self.rank]: self._evaluate(specs[turn[self.rank]])} if self.rank < len(turn) else {}
            if self.world_size > 1:
                gathered: list[dict[int, dict[str, Any]]] = [{} for _ in range(self.world_size)]
                dist.all_gather_object(gathered, mine)
                mine = {i: r for part in gathered for i, r in part.items()}
            yield from sorted(mine.items())

    def __call__(self, specs: list[SubnetSpec], origin: str) -> list[Candidate]:
        specs = specs[:max(self.remaining, 0)]
        keys = [spec_key(s) for s in specs]
        first = len(self.asked)  # the batch's candidates are numbered in order, evaluated or replayed
        todo = [i for i, k in enumerate(keys) if self.journal is None or k not in self.journal]
        records: dict[int, dict[str, Any]] = {}
        for i, result in self._evaluate_in_turns(specs, todo):
            records[i] = {"key": keys[i], "eval": first + i, "origin": origin,
                          "params": param_count(self.teacher.config, specs[i]),
                          "spec": specs[i].to_dict(self.teacher.config), **result}
            if self.journal is not None and self.rank == 0:
                self.journal.add(records[i])
            if self.progress is not None:
                self.progress.set_postfix_str(f"best {_best_text([*self.asked.values(), *records.values()])}",
                                              refresh=False)
                self.progress.update(1)
        self.replayed += len(specs) - len(todo)
        out = []
        for i, (spec, key) in enumerate(zip(specs, keys, strict=True)):
            self.asked[key] = records[i] if i in records else self.journal[key]
            out.append(Candidate(spec, self.asked[key]["loss"], self.asked[key]["cost"]))
        return out


def _best_text(records) -> str:
    best = min(records, key=lambda r: r["loss"])
    ppl = best.get("perplexity")
    return f"ppl {ppl:.2f}" if ppl is not None and not math.isnan(ppl) else f"loss {best['loss']:.4f}"


def check_names(strategy: str, cost: str, space: str | None = None) -> None:
    """The named strategy, cost (and space) exist: checkable before any model is loaded."""
    if strategy not in STRATEGIES:
        raise UsageError(f"search strategy {strategy!r} is unknown", f"use one of {', '.join(STRATEGIES)}")
    if cost not in COSTS:
        raise UsageError(f"cost {cost!r} is unknown", f"use one of {', '.join(COSTS)}")
    if space is not None:
        check_space_name(space)


def run_search(teacher: Decoder, space: SearchSpace, budget: Budget, objective, cfg: SearchConfig,
               out_dir: str | Path | None, header: dict[str, Any], rank: int = 0, world_size: int = 1,
               progress: bool = True, seeds: Seeds = ()) -> dict[str, Any]:
    """Run (or resume) the search and, on rank 0, write its outputs to `out_dir`. Returns the summary."""
    check_names(cfg.strategy, cfg.cost)
    space.check_budget(budget)
    out = Path(out_dir) if out_dir is not None else None
    # every rank reads the journal (it is the replay), only rank 0 writes it; a larger --evals extends a search
    identity = {k: v for k, v in header.items() if k != "evals"}
    journal = None
    if out is not None:  # rank 0 starts (or checks and trims) the journal before the others read it
        refused = None
        if rank == 0:
            try:
                journal = Journal(out / JOURNAL, identity)
            except UsageError as err:  # the others meet it at the barrier, then find the same header
                refused = err
        if world_size > 1:
            dist.barrier()
        if refused is not None:
            raise refused
        journal = journal or Journal(out / JOURNAL, identity, writer=False)
    if cfg.strategy in ("evolution", "pareto") and cfg.evals <= cfg.settings.population and progress and rank == 0:
        print(f"search: warning: --evals {cfg.evals} is not above --population {cfg.settings.population}, so "
              f"{cfg.strategy} only evaluates its first generation (the first-k anchor and random samples); raise "
              "--evals or lower --population for children", file=sys.stderr)
    # replayed candidates take no time: the bar starts past them, so its rate and ETA are those of real evaluations
    replayable = min(len(journal), cfg.evals) if journal is not None else 0
    bar = progress_bar(total=cfg.evals, initial=replayable, desc=f"search ({cfg.strategy})", unit="eval",
                       active=progress and rank == 0)
    with bar:
        evaluator = JournaledEvaluator(objective, teacher, space, journal, cfg, rank, world_size, bar)
        STRATEGIES[cfg.strategy](space, budget, evaluator, cfg.settings, random.Random(cfg.seed), seeds)
    records = list(evaluator.asked.values())
    if not records:
        raise UsageError(f"the search found no candidate in {budget}", "widen the budget or change the space")
    summary = summarize(records, teacher, evaluator.replayed)
    if out is not None and rank == 0:
        write_outputs(out, records, summary, teacher, cfg, header)
    return summary


def importance_seed(space: SearchSpace, budget: Budget, scores: Importance, seed: int) -> Seeds:
    """The sub-network importance scores choose at the first-k anchor's widths: the best units, and the
    layers that change the residual stream most. Empty when the space cannot hold it (e.g. coarse spaces)."""
    anchor = first_k_anchor(space, budget, random.Random(seed))
    spec = importance_spec(space.teacher, scores, anchor, layers=top_layers(scores, len(anchor.layers)))
    return (spec,) if space.contains(spec) and param_count(space.teacher, spec) in budget else ()


def summarize(records: list[dict[str, Any]], teacher: Decoder, replayed: int) -> dict[str, Any]:
    best = min(records, key=lambda r: r["loss"])
    front = [records[i] for i in non_dominated([(r["loss"], r["cost"]) for r in records])]
    return {"evaluations": len(records), "replayed": replayed, "best": _public(best),
            "pareto": sorted((_public(r) for r in front), key=lambda r: r["cost"]),
            "seconds": sum(r["seconds"] for r in records)}


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("key", "eval", "loss", "perplexity", "params", "cost", "spec") if k in record}


def write_outputs(out: Path, records: list[dict[str, Any]], summary: dict[str, Any], teacher: Decoder,
                  cfg: SearchConfig, header: dict[str, Any]) -> None:
    from headstart.search.plots import plot_pareto, plot_progress

    best = summary["best"]
    write_json_atomic(out / "best.json", {"teacher": header["teacher"], "space": cfg.space, "budget": header["budget"],
                                          **best})
    write_json_atomic(out / "pareto.json", {"cost": cfg.cost, "front": summary["pareto"]})
    plot_pareto(records, summary["pareto"], cfg.cost, out / "pareto.png")
    plot_progress(records, out / "progress.png")
