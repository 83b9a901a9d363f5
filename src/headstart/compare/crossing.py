"""How many tokens and FLOPs a run needs to first reach a perplexity: the arithmetic of the comparison.

Between two validation points the curve is interpolated linearly in log-perplexity (perplexity
falls roughly exponentially over a stretch of training), with tokens and FLOPs at the same fraction
of the way. A run already at the target at its first point gets that point as an upper bound.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from headstart.train.metrics import read_metrics


@dataclass(frozen=True)
class CurvePoint:
    step: int
    tokens: int
    flops: float  # student forward + backward and teacher forward (run or read from a cache), so far
    perplexity: float


@dataclass(frozen=True)
class Crossing:
    tokens: float | None  # None: the target was never reached
    flops: float | None
    bound: bool = False  # reached at the first point already: tokens and FLOPs are upper bounds

    @property
    def reached(self) -> bool:
        return self.tokens is not None


def read_curve(run_dir: str | Path, count_cache: bool = True) -> list[CurvePoint]:
    """The validation points of a training run (its metrics.jsonl), in step order. With `count_cache` False,
    the teacher forwards a run read from a logit cache are left out (counted once, where the cache was filled)."""
    points = []
    for r in read_metrics(Path(run_dir) / "metrics.jsonl"):
        if "val_ppl" in r and "tokens" in r:
            flops = r["student_flops"] + r["teacher_flops"] + count_cache * r.get("cached_teacher_flops", 0.0)
            points.append(CurvePoint(r["step"], r["tokens"], flops, r["val_ppl"]))
    return sorted(points, key=lambda p: p.step)


def perplexity_at(curve: list[CurvePoint], tokens: float) -> float | None:
    """The curve's perplexity after `tokens` tokens, interpolated in log-perplexity; None outside the curve."""
    for a, b in itertools.pairwise(curve):
        if a.tokens <= tokens <= b.tokens:
            f = (tokens - a.tokens) / (b.tokens - a.tokens) if b.tokens > a.tokens else 1.0
            return math.exp(math.log(a.perplexity) + f * (math.log(b.perplexity) - math.log(a.perplexity)))
    return curve[0].perplexity if len(curve) == 1 and curve[0].tokens == tokens else None


def last_doubling(curve: list[CurvePoint]) -> float | None:
    """How much the last doubling of tokens still lowered perplexity (a fraction of the perplexity at half
    the tokens): how far from its plateau a run ended. None for a curve too short to say."""
    if not curve or curve[-1].tokens <= 0:
        return None
    half = perplexity_at(curve, curve[-1].tokens / 2)
    return None if half is None else (half - curve[-1].perplexity) / half


def first_crossing(curve: list[CurvePoint], target: float) -> Crossing:
    """Where `curve` first reaches perplexity `target` or below."""
    if not curve:
        return Crossing(None, None)
    if curve[0].perplexity <= target:
        return Crossing(curve[0].tokens, curve[0].flops, bound=True)
    for a, b in itertools.pairwise(curve):
        if b.perplexity <= target:
            f = (math.log(a.perplexity) - math.log(target)) / (math.log(a.perplexity) - math.log(b.perplexity))
            return Crossing(a.tokens + f * (b.tokens - a.tokens), a.flops + f * (b.flops - a.flops))
    return Crossing(None, None)
