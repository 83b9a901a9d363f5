"""Search strategies over a space, inside a parameter bin; each asks an `Evaluate` for batches of results.

- evolution: the paper's bin-constrained evolutionary search. Parents by tournament; children
  by crossover and mutation, repaired into the bin; survivors the best (tournament) or the
  youngest (aging, regularized evolution).
- random / stratified: baselines; stratified spreads samples evenly over sub-bins of the budget.
- pareto: NSGA-II (non-dominated sorting + crowding) on (loss, cost) over a wide bin.
- oneshot: no search, the baseline of pruning methods such as Minitron: the first seed (with
  importance scores, the sub-network they choose), else the first-k anchor; one evaluation.

Every strategy first evaluates its seeds (known good starts, such as the sub-network importance
scores choose). A strategy is deterministic given its rng and the results it receives, which is what lets a
killed search resume by replaying its journal (see journal.py).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from headstart.search.pareto import nsga2_rank
from headstart.subnet import Budget, SearchSpace, SubnetSpec, full_spec

Seeds = tuple[SubnetSpec, ...]  # candidates every strategy evaluates first (e.g. importance-chosen ones)


@dataclass(frozen=True)
class Candidate:
    spec: SubnetSpec
    loss: float
    cost: float  # what the Pareto mode trades against (parameters, FLOPs or latency)


class Evaluate(Protocol):
    """What a strategy sees: evaluate a batch, whether a spec was already asked for, and how many are left."""

    def __call__(self, specs: list[SubnetSpec], origin: str) -> list[Candidate]: ...

    def seen(self, spec: SubnetSpec) -> bool: ...

    @property
    def remaining(self) -> int: ...


SURVIVALS = ("tournament", "aging")  # who survives a generation: the best, or the youngest


@dataclass(frozen=True)
class StrategySettings:
    population: int = 16
    tournament: int = 4
    crossover_prob: float = 0.5
    mutation_prob: float = 0.8
    survival: str = "tournament"  # one of SURVIVALS
    bins: int = 8  # stratified: sub-bins of the budget


def _fresh(make: Callable[[], SubnetSpec], evaluate: Evaluate, want: int, tries_each: int = 20) -> list[SubnetSpec]:
    """Up to `want` specs from `make()` that were never evaluated and are not repeated in the batch."""
    batch: list[SubnetSpec] = []
    for _ in range(want * tries_each):
        if len(batch) >= min(want, evaluate.remaining):
            break
        spec = make()
        if not evaluate.seen(spec) and spec not in batch:
            batch.append(spec)
    return batch


def _tournament(pool: list[Candidate], k: int, rng: random.Random, rank: dict[int, int] | None = None) -> Candidate:
    """The best of k random members: by loss, or by a given rank (lower first) for Pareto search."""
    picks = rng.sample(range(len(pool)), min(k, len(pool)))
    return pool[min(picks, key=lambda i: rank[i] if rank is not None else pool[i].loss)]


def _child(space: SearchSpace, a: Candidate, b: Candidate, budget: Budget, s: StrategySettings,
           rng: random.Random) -> SubnetSpec:
    child = space.crossover(a.spec, b.spec, rng, budget) if rng.random() < s.crossover_prob else a.spec
    if child in (a.spec, b.spec) or rng.random() < s.mutation_prob:
        child = space.mutate(child, rng, budget)
    return child


def first_k_anchor(space: SearchSpace, budget: Budget, rng: random.Random) -> SubnetSpec:
    """The teacher shrunk evenly into the bin, keeping the first units of every kind and the first layers."""
    coarse = dataclasses.replace(space, selection="coarse", layers="first")  # a subset of any space
    return coarse.repair(full_spec(space.teacher), budget, rng)


def _initial(space: SearchSpace, budget: Budget, evaluate: Evaluate, s: StrategySettings,
             rng: random.Random, seeds: Seeds) -> list[Candidate]:
    """The seeds, the first-k anchor, then random samples.

    With the first-k sub-network in it, evolution starts no worse than first-k slicing (on an
    importance-ordered teacher, than the importance baseline); seeds add known good starts.
    """
    anchor = [first_k_anchor(space, budget, rng)]
    samples = _fresh(lambda: space.sample(rng, budget), evaluate, s.population - 1 - len(seeds))
    return evaluate(list(dict.fromkeys([*seeds, *anchor, *samples])), "initial")


def evolution(space: SearchSpace, budget: Budget, evaluate: Evaluate, s: StrategySettings,
              rng: random.Random, seeds: Seeds = ()) -> None:
    population = _initial(space, budget, evaluate, s, rng, seeds)
    while evaluate.remaining > 0 and population:
        def make(pool: list[Candidate] = population) -> SubnetSpec:
            return _child(space, _tournament(pool, s.tournament, rng), _tournament(pool, s.tournament, rng),
                          budget, s, rng)

        children = evaluate(_fresh(make, evaluate, s.population), "child")
        if not children:
            break  # the neighbourhood is exhausted: every child was seen before
        if s.survival == "aging":
            population = (population + children)[-s.population:]
        else:
            population = sorted(population + children, key=lambda c: c.loss)[:s.population]


def random_search(space: SearchSpace, budget: Budget, evaluate: Evaluate, s: StrategySettings,
                  rng: random.Random, seeds: Seeds = ()) -> None:
    evaluate(list(seeds), "seed")
    while evaluate.remaining > 0:
        if not evaluate(_fresh(lambda: space.sample(rng, budget), evaluate, s.population), "random"):
            break


def stratified_search(space: SearchSpace, budget: Budget, evaluate: Evaluate, s: StrategySettings,
                      rng: random.Random, seeds: Seeds = ()) -> None:
    """Random search that cycles through `bins` equal sub-bins of the budget, so every size is covered."""
    evaluate(list(seeds), "seed")
    lo, hi = max(budget.lo, space.param_range()[0]), min(budget.hi, space.param_range()[1])
    edges = [lo + (hi - lo) * i // s.bins for i in range(s.bins + 1)]
    bins = [Budget(edges[i], edges[i + 1]) for i in range(s.bins)]
    turn = 0
    while evaluate.remaining > 0:
        batch: list[SubnetSpec] = []
        for _ in range(s.population * 4):
            if len(batch) >= min(s.population, evaluate.remaining):
                break
            sub = bins[turn % len(bins)]
            turn += 1
            spec = space.sample(rng, sub) if _reachable(space, sub) else space.sample(rng, budget)
            if not evaluate.seen(spec) and spec not in batch:
                batch.append(spec)
        if not evaluate(batch, "stratified"):
            break


def _reachable(space: SearchSpace, sub: Budget) -> bool:
    lo, hi = space.param_range()
    return sub.lo <= hi and sub.hi >= lo


def pareto_search(space: SearchSpace, budget: Budget, evaluate: Evaluate, s: StrategySettings,
                  rng: random.Random, seeds: Seeds = ()) -> None:
    population = _initial(space, budget, evaluate, s, rng, seeds)
    while evaluate.remaining > 0 and population:
        order = nsga2_rank([(c.loss, c.cost) for c in population])
        rank = {i: r for r, i in enumerate(order)}

        def make(pool: list[Candidate] = population, rank: dict[int, int] = rank) -> SubnetSpec:
            return _child(space, _tournament(pool, 2, rng, rank), _tournament(pool, 2, rng, rank), budget, s, rng)

        children = evaluate(_fresh(make, evaluate, s.population), "child")
        if not children:
            break
        merged = population + children
        population = [merged[i] for i in nsga2_rank([(c.loss, c.cost) for c in merged])[:s.population]]


def oneshot(space: SearchSpace, budget: Budget, evaluate: Evaluate, s: StrategySettings,
            rng: random.Random, seeds: Seeds = ()) -> None:
    evaluate([seeds[0] if seeds else first_k_anchor(space, budget, rng)], "oneshot")


STRATEGIES: dict[str, Callable[[SearchSpace, Budget, Evaluate, StrategySettings, random.Random, Seeds], None]] = {
    "evolution": evolution,
    "random": random_search,
    "stratified": stratified_search,
    "pareto": pareto_search,
    "oneshot": oneshot,
}
