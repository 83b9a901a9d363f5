"""Pareto fronts, and NSGA-II's ranking (non-dominated sorting with crowding distance).

Every objective is minimised. Kept small and ours because candidates are sub-network specs
with their own mutation and crossover, which general multi-objective libraries cannot drive.
"""

from __future__ import annotations

from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def non_dominated(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (duplicates of a front point are all kept)."""
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]


def fronts(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Successive non-dominated fronts: front 0 is the Pareto front, front 1 what it hides, and so on."""
    left = list(range(len(points)))
    out = []
    while left:
        front = [left[i] for i in non_dominated([points[j] for j in left])]
        out.append(front)
        left = [i for i in left if i not in set(front)]
    return out


def crowding(points: Sequence[Sequence[float]], front: Sequence[int]) -> dict[int, float]:
    """How isolated each point of a front is (larger = more isolated; the ends are infinite)."""
    distance = {i: 0.0 for i in front}
    for m in range(len(points[front[0]])):
        ranked = sorted(front, key=lambda i: points[i][m])
        span = points[ranked[-1]][m] - points[ranked[0]][m] or 1.0
        distance[ranked[0]] = distance[ranked[-1]] = float("inf")
        for a, i, b in zip(ranked, ranked[1:], ranked[2:], strict=False):
            distance[i] += (points[b][m] - points[a][m]) / span
    return distance


def nsga2_rank(points: Sequence[Sequence[float]]) -> list[int]:
    """All indices, best first: by front, then by crowding distance (descending)."""
    order: list[int] = []
    for front in fronts(points):
        dist = crowding(points, front)
        order.extend(sorted(front, key=lambda i: -dist[i]))
    return order
