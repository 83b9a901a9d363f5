"""Search spaces over sub-network specs: sample, mutate, cross over, and repair into a parameter bin.

Two axes give the paper's four spaces (Krishnakumar et al., §3):
- selection: "coarse" keeps the first n units of everything (heads: the first m of each of the
  first g key/value groups); "fine" keeps any n units, chosen per layer;
- widths: "uniform" gives every kept layer the same widths (a student the teacher's stock
  Hugging Face class can hold); "layerwise" lets each layer have its own.
A fifth space, "layers", keeps every width and only chooses layers. Independently, kept layers
are either the first k ("first") or any k in order ("subset").

Every spec a space yields is deployable: query heads are g x m (a multiple of the kept groups),
and embedding and MLP widths are multiples of `multiple` (or the teacher's full width).

Inside a space a spec is seen as widths (how many units of each kind) and, per selection, a
priority order over the teacher's units (a spec keeps the first `width` of each order). To land
in a parameter bin, all widths are scaled together between their current value and the space's
minimum (or maximum) by one factor t, found by bisection (the count grows with t), then nudged
a grid step at a time. So a sample in a bin keeps the proportions it was drawn with, and no
rejection loop is needed.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import random
import re
from dataclasses import dataclass

from headstart.errors import UsageError
from headstart.model.decoder import DecoderConfig, LayerShape
from headstart.settings import SUFFIXES
from headstart.subnet.counts import param_count
from headstart.subnet.spec import LayerSpec, SubnetSpec, coarse_heads

# name -> (selection, widths, default layer selection)
SPACES: dict[str, tuple[str, str, str]] = {
    "coarse-uniform": ("coarse", "uniform", "first"),
    "coarse-layerwise": ("coarse", "layerwise", "first"),
    "fine-uniform": ("fine", "uniform", "subset"),
    "fine-layerwise": ("fine", "layerwise", "subset"),
    "layers": ("coarse", "full", "subset"),
}
LAYER_SELECTIONS = ("first", "subset")


@dataclass(frozen=True)
class Budget:
    """A parameter bin [lo, hi], inclusive."""

    lo: int
    hi: int

    def __contains__(self, n: int) -> bool:
        return self.lo <= n <= self.hi

    def __str__(self) -> str:
        return f"[{human(self.lo)}, {human(self.hi)}]"


def parse_budget(text: str, teacher_params: int, tolerance: float = 0.02) -> Budget:
    """'50M' or '50%' (of the teacher) means that many parameters +- `tolerance`; 'LO:HI' is an explicit bin."""
    def amount(word: str) -> float:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMbBgGtT]?|%)\s*", word)
        if not m:
            raise UsageError(f"budget {text!r} is not a parameter count",
                             "write e.g. 50M, 1.2B, 50% (of the teacher) or 40M:60M")
        value, unit = float(m.group(1)), m.group(2).lower()
        if not unit and value < 1:  # a share of the teacher written as a fraction
            raise UsageError(f"budget {text!r} is less than one parameter",
                             f"write a share of the teacher with %, e.g. {value * 100:g}%, or a count such as 50M")
        return value / 100 * teacher_params if unit == "%" else value * SUFFIXES.get(unit, 1)

    parts = text.split(":")
    if len(parts) == 2:
        lo, hi = amount(parts[0]), amount(parts[1])
    elif len(parts) == 1:
        center = amount(parts[0])
        lo, hi = center * (1 - tolerance), center * (1 + tolerance)
    else:
        raise UsageError(f"budget {text!r} has more than one ':'", "write one count, or LO:HI")
    if not 0 < lo <= hi or math.ceil(lo) > math.floor(hi):
        raise UsageError(f"budget {text!r} is empty or not positive (it holds no whole parameter count)",
                         "give 0 < LO <= HI, e.g. 50M or 40M:60M")
    return Budget(math.ceil(lo), math.floor(hi))


def human(n: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{unit}"
    return f"{n:.4g}"


def _grid(full: int, multiple: int) -> tuple[int, ...]:
    """Allowed widths: multiples of `multiple` up to `full`, and `full` itself."""
    values = list(range(multiple, full + 1, multiple))
    return tuple(values if values and values[-1] == full else [*values, full])


def _snap(grid: tuple[int, ...], x: float) -> int:
    """The largest grid value <= x (the smallest when x is below the grid)."""
    return grid[max(0, bisect.bisect_right(grid, x + 1e-9) - 1)]


@dataclass(frozen=True)
class _Widths:
    """How many units of each kind; per-layer tuples are indexed by teacher layer."""

    e: int
    k: int
    g: tuple[int, ...]  # key/value groups
    m: tuple[int, ...]  # query heads per group
    d: tuple[int, ...]  # MLP neurons


@dataclass(frozen=True)
class _Orders:
    """Priority orders over teacher units; a spec keeps each order's first `width` entries."""

    embd: tuple[int, ...]
    layers: tuple[int, ...]
    groups: tuple[tuple[int, ...], ...]  # per layer
    heads: tuple[tuple[tuple[int, ...], ...], ...]  # per layer, per group: positions within the group
    mlp: tuple[tuple[int, ...], ...]  # per layer


@dataclass(frozen=True)
class SearchSpace:
    """A declarative space of sub-networks of `teacher`; see the module docstring."""

    name: str
    teacher: DecoderConfig
    selection: str  # "coarse" | "fine"
    widths: str  # "uniform" | "layerwise" | "full"
    layers: str  # "first" | "subset"
    multiple: int = 8
    min_layers: int = 1

    def __post_init__(self) -> None:
        if self.widths == "uniform" and not self.teacher.is_uniform:
            raise UsageError(f"space {self.name!r} needs a teacher whose layers all have the same widths",
                             "use a layer-wise space (coarse-layerwise or fine-layerwise)")
        if self.layers not in LAYER_SELECTIONS:
            raise UsageError(f"layer selection {self.layers!r} is unknown", f"use one of {LAYER_SELECTIONS}")
        if self.multiple < 1:
            raise UsageError(f"width multiple {self.multiple} is not positive", "use e.g. 8 or 64")
        if not 1 <= self.min_layers <= self.teacher.n_layer:
            raise UsageError(f"min_layers {self.min_layers} is outside 1..{self.teacher.n_layer}",
                             "keep at least one layer and at most the teacher's")

    # ------------------------------------------------------------ grids

    @property
    def _fine(self) -> bool:
        return self.selection == "fine"

    def _group_size(self, layer: int) -> int:
        s = self.teacher.layers[layer]
        return s.n_head // s.n_kv

    def _grids(self, layer: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """Allowed (groups, heads per group, MLP neurons) of one teacher layer."""
        s = self.teacher.layers[layer]
        q = self._group_size(layer)
        if self.widths == "full":
            return (s.n_kv,), (q,), (s.mlp,)
        return tuple(range(1, s.n_kv + 1)), tuple(range(1, q + 1)), _grid(s.mlp, self.multiple)

    @property
    def _embd_grid(self) -> tuple[int, ...]:
        return (self.teacher.n_embd,) if self.widths == "full" else _grid(self.teacher.n_embd, self.multiple)

    @property
    def _depth_grid(self) -> tuple[int, ...]:
        return tuple(range(self.min_layers, self.teacher.n_layer + 1))

    # ------------------------------------------------------------ widths + orders <-> spec

    def _to_spec(self, w: _Widths, o: _Orders) -> SubnetSpec:
        layers = []
        for layer in sorted(o.layers[:w.k]):
            q = self._group_size(layer)
            groups = sorted(o.groups[layer][:w.g[layer]])
            heads = sorted(g * q + p for g in groups for p in o.heads[layer][g][:w.m[layer]])
            layers.append(LayerSpec(layer, tuple(heads), tuple(groups), tuple(sorted(o.mlp[layer][:w.d[layer]]))))
        return SubnetSpec(embd=tuple(sorted(o.embd[:w.e])), layers=tuple(layers))

    def _count(self, w: _Widths, o: _Orders) -> int:
        shapes = [LayerShape(w.g[i] * w.m[i], w.g[i], w.d[i]) for i in o.layers[:w.k]]
        return param_count(dataclasses.replace(self.teacher, n_embd=w.e, layers=shapes))

    def _order(self, rng: random.Random, n: int, first: tuple[int, ...] = ()) -> tuple[int, ...]:
        """Coarse: 0..n-1. Fine: the units of `first` in random order, then the others in random order."""
        if not self._fine:
            return tuple(range(n))
        return _shuffled(rng, first) + _shuffled(rng, tuple(sorted(set(range(n)) - set(first))))

    def _layer_order(self, rng: random.Random, kept: tuple[int, ...] = ()) -> tuple[int, ...]:
        n = self.teacher.n_layer
        if self.layers == "first":
            return tuple(range(n))
        return _shuffled(rng, kept) + _shuffled(rng, tuple(sorted(set(range(n)) - set(kept))))

    def _random(self, rng: random.Random) -> tuple[_Widths, _Orders]:
        cfg = self.teacher
        per_layer = [tuple(rng.choice(grid) for grid in self._grids(i)) for i in range(cfg.n_layer)]
        if self.widths == "uniform":
            per_layer = [per_layer[0]] * cfg.n_layer
        g, m, d = (tuple(x) for x in zip(*per_layer, strict=True))
        w = _Widths(e=rng.choice(self._embd_grid), k=rng.choice(self._depth_grid), g=g, m=m, d=d)
        return w, self._orders(rng, None)

    def _orders(self, rng: random.Random, spec: SubnetSpec | None) -> _Orders:
        """Random priority orders, with the units `spec` keeps (if given) first."""
        cfg = self.teacher
        kept = {s.layer: s for s in spec.layers} if spec else {}
        groups, heads, mlp = [], [], []
        for i, shape in enumerate(cfg.layers):
            q = self._group_size(i)
            s = kept.get(i)
            groups.append(self._order(rng, shape.n_kv, s.kv if s else ()))
            heads.append(tuple(self._order(rng, q, tuple(h - g * q for h in s.heads if h // q == g) if s else ())
                               for g in range(shape.n_kv)))
            mlp.append(self._order(rng, shape.mlp, s.mlp if s else ()))
        return _Orders(embd=self._order(rng, cfg.n_embd, spec.embd if spec else ()),
                       layers=self._layer_order(rng, tuple(kept)), groups=tuple(groups), heads=tuple(heads),
                       mlp=tuple(mlp))

    def _from_spec(self, spec: SubnetSpec, rng: random.Random) -> tuple[_Widths, _Orders]:
        """The nearest point of this space: widths snapped to the grids, units kept where the space allows."""
        cfg = self.teacher
        kept = {s.layer: s for s in spec.layers}
        rows = []
        for i in range(cfg.n_layer):
            gg, mg, dg = self._grids(i)
            s = spec.layers[0] if self.widths == "uniform" else kept.get(i)
            if s is None:  # a layer-wise width for a layer the spec drops: drawn at random
                rows.append((rng.choice(gg), rng.choice(mg), rng.choice(dg)))
            else:
                rows.append((_snap(gg, len(s.kv)), _snap(mg, len(s.heads) // len(s.kv)), _snap(dg, len(s.mlp))))
        g, m, d = (tuple(x) for x in zip(*rows, strict=True))
        k = _snap(self._depth_grid, len(spec.layers))
        return _Widths(e=_snap(self._embd_grid, spec.n_embd), k=k, g=g, m=m, d=d), self._orders(rng, spec)

    # ------------------------------------------------------------ fitting into a bin

    def _scaled(self, w: _Widths, t: float, grow: bool) -> _Widths:
        """Every width moved by the fraction t from its value towards its grid's max (grow) or min."""
        def move(value: int, grid: tuple[int, ...]) -> int:
            return _snap(grid, value + t * (grid[-1] - value) if grow else grid[0] + t * (value - grid[0]))

        grids = [self._grids(i) for i in range(self.teacher.n_layer)]
        return _Widths(e=move(w.e, self._embd_grid), k=move(w.k, self._depth_grid),
                       g=tuple(move(x, gr[0]) for x, gr in zip(w.g, grids, strict=True)),
                       m=tuple(move(x, gr[1]) for x, gr in zip(w.m, grids, strict=True)),
                       d=tuple(move(x, gr[2]) for x, gr in zip(w.d, grids, strict=True)))

    def _steps(self, w: _Widths, o: _Orders, up: bool) -> list[_Widths]:
        """Every width moved one grid step up (or down): per kept layer when layer-wise, all layers when uniform."""
        def step(value: int, grid: tuple[int, ...]) -> int | None:
            i = grid.index(value) + (1 if up else -1)
            return grid[i] if 0 <= i < len(grid) else None

        out = []
        for name, grid in (("e", self._embd_grid), ("k", self._depth_grid)):
            new = step(getattr(w, name), grid)
            if new is not None:
                out.append(dataclasses.replace(w, **{name: new}))
        layers = [list(range(self.teacher.n_layer))] if self.widths == "uniform" else [[i] for i in o.layers[:w.k]]
        for which in layers:
            for j, name in enumerate(("g", "m", "d")):
                values = list(getattr(w, name))
                new = step(values[which[0]], self._grids(which[0])[j])
                if new is not None:
                    for i in which:
                        values[i] = new
                    out.append(dataclasses.replace(w, **{name: tuple(values)}))
        return out

    def _fit(self, w: _Widths, o: _Orders, budget: Budget, rng: random.Random) -> _Widths | None:
        """Widths in `budget` near `w` (same proportions), or None when the grid steps jump over the bin."""
        count = self._count(w, o)
        if count in budget:
            return w
        grow = count < budget.lo
        inside, outside = 1.0, 0.0  # t=1 is past the bin's near edge when growing; t=0 is within it when shrinking
        if not grow:
            inside, outside = 0.0, 1.0
        for _ in range(40):
            mid = (inside + outside) / 2
            c = self._count(self._scaled(w, mid, grow), o)
            if (c >= budget.lo) if grow else (c <= budget.hi):
                inside = mid
            else:
                outside = mid
        w = self._scaled(w, inside, grow)
        for _ in range(10_000):
            count = self._count(w, o)
            if count in budget:
                return w
            up = count < budget.lo
            moves = [(self._count(x, o), x) for x in self._steps(w, o, up)]
            landing = [x for c, x in moves if c in budget]
            if landing:
                return rng.choice(landing)
            toward = [x for c, x in moves if (c < budget.lo if up else c > budget.hi)]
            if not toward:
                return None
            w = rng.choice(toward)
        return None

    def check_budget(self, budget: Budget) -> None:
        """Raise a UsageError when no sub-network of this space can have a count in `budget`."""
        lo, hi = self.param_range()
        if budget.hi < lo or budget.lo > hi:
            raise UsageError(f"no {self.name} sub-network has {budget} parameters: the space spans "
                             f"[{human(lo)}, {human(hi)}]", "choose a budget inside that range")

    def _fitted(self, make, budget: Budget | None, rng: random.Random, tries: int = 50) -> SubnetSpec:
        """The first of `tries` candidates from `make()` that fits `budget` (every one when None)."""
        if budget is not None:
            self.check_budget(budget)
        for _ in range(tries):
            w, o = make()
            if budget is not None:
                w = self._fit(w, o, budget, rng)
            if w is not None:
                return self._to_spec(w, o)
        sizes = {self._count(*self._random(rng)) for _ in range(20 * tries)}  # sampled, to name the nearest
        below, above = [n for n in sizes if n < budget.lo], [n for n in sizes if n > budget.hi]
        near = " and ".join(human(n) for n in (max(below, default=0), min(above, default=0)) if n)
        raise UsageError(f"found no {self.name} sub-network with {budget} parameters in {tries} tries: the bin is "
                         f"narrower than this space's width steps (the nearest sizes it has: {near})",
                         "widen the bin to reach one of them (--budget LO:HI), or use a layer-wise space")

    # ------------------------------------------------------------ the public operations

    def sample(self, rng: random.Random, budget: Budget | None = None) -> SubnetSpec:
        """A random spec of this space, in `budget` when given."""
        return self._fitted(lambda: self._random(rng), budget, rng)

    def repair(self, spec: SubnetSpec, budget: Budget, rng: random.Random) -> SubnetSpec:
        """`spec` projected into this space and scaled into `budget`, keeping its proportions and units."""
        return self._fitted(lambda: self._from_spec(spec, rng), budget, rng)

    def mutate(self, spec: SubnetSpec, rng: random.Random, budget: Budget | None = None) -> SubnetSpec:
        """A neighbour of `spec`: one width, the depth, one kept layer, or one kept unit changed."""
        base = self._from_spec(spec, rng)
        child = spec
        for _ in range(20):
            child = self._fitted(lambda: self._mutated(*base, rng), budget, rng)
            if child != spec:
                break
        return child

    def crossover(self, a: SubnetSpec, b: SubnetSpec, rng: random.Random,
                  budget: Budget | None = None) -> SubnetSpec:
        """A child taking each gene (embedding, depth, each layer's widths and units) from either parent.

        Kept layers mix as sets: layers both parents keep come first, then those one keeps.
        """
        (wa, oa), (wb, ob) = self._from_spec(a, rng), self._from_spec(b, rng)

        def make() -> tuple[_Widths, _Orders]:
            pick = [rng.random() < 0.5 for _ in range(self.teacher.n_layer)]
            if self.widths == "uniform":
                pick = [pick[0]] * len(pick)
            emb = (wa, oa) if rng.random() < 0.5 else (wb, ob)
            ka, kb = set(oa.layers[:wa.k]), set(ob.layers[:wb.k])
            layer_order = (oa.layers if self.layers == "first" else
                           _shuffled(rng, tuple(sorted(ka & kb))) + _shuffled(rng, tuple(sorted(ka ^ kb)))
                           + _shuffled(rng, tuple(sorted(set(range(self.teacher.n_layer)) - ka - kb))))
            per = [(wa, oa) if p else (wb, ob) for p in pick]
            w = _Widths(e=emb[0].e, k=(wa if rng.random() < 0.5 else wb).k,
                        g=tuple(x[0].g[i] for i, x in enumerate(per)), m=tuple(x[0].m[i] for i, x in enumerate(per)),
                        d=tuple(x[0].d[i] for i, x in enumerate(per)))
            o = _Orders(embd=emb[1].embd, layers=layer_order, groups=tuple(x[1].groups[i] for i, x in enumerate(per)),
                        heads=tuple(x[1].heads[i] for i, x in enumerate(per)),
                        mlp=tuple(x[1].mlp[i] for i, x in enumerate(per)))
            return w, o

        return self._fitted(make, budget, rng)

    def _mutated(self, w: _Widths, o: _Orders, rng: random.Random) -> tuple[_Widths, _Orders]:
        kept = o.layers[:w.k]
        moves = []
        if len(self._embd_grid) > 1:
            moves.append("embd")
        if len(self._depth_grid) > 1:
            moves.append("depth")
        if self.layers == "subset" and w.k < self.teacher.n_layer:
            moves.append("swap layer")
        if self.widths != "full":
            moves.append("width")
        if self._fine:
            moves.append("units")
        move = rng.choice(moves)
        if move == "embd":
            return dataclasses.replace(w, e=_neighbour(rng, self._embd_grid, w.e)), o
        if move == "depth":
            return dataclasses.replace(w, k=_neighbour(rng, self._depth_grid, w.k, reach=1)), o
        if move == "swap layer":
            return w, dataclasses.replace(o, layers=_swap_across(rng, o.layers, w.k))
        if move == "width":
            j = rng.randrange(3)
            name = "gmd"[j]
            values = list(getattr(w, name))
            layer = rng.choice(kept)
            new = _neighbour(rng, self._grids(layer)[j], values[layer])
            for i in (range(len(values)) if self.widths == "uniform" else [layer]):
                values[i] = new
            return dataclasses.replace(w, **{name: tuple(values)}), o
        return w, self._swapped_unit(w, o, rng)

    def _swapped_unit(self, w: _Widths, o: _Orders, rng: random.Random) -> _Orders:
        """One kept unit (a channel, neuron, group or head) traded for one the spec does not keep."""
        layer = rng.choice(o.layers[:w.k])
        g = rng.choice(o.groups[layer][:w.g[layer]])
        choices = [c for c in ("embd", "mlp", "groups", "heads") if {
            "embd": w.e < self.teacher.n_embd, "mlp": w.d[layer] < len(o.mlp[layer]),
            "groups": w.g[layer] < len(o.groups[layer]), "heads": w.m[layer] < len(o.heads[layer][g])}[c]]
        if not choices:
            return o
        which = rng.choice(choices)
        if which == "embd":
            return dataclasses.replace(o, embd=_swap_across(rng, o.embd, w.e))
        if which == "heads":
            per_group = list(o.heads[layer])
            per_group[g] = _swap_across(rng, per_group[g], w.m[layer])
            return dataclasses.replace(o, heads=_replace_at(o.heads, layer, tuple(per_group)))
        width = w.d[layer] if which == "mlp" else w.g[layer]
        orders = getattr(o, which)
        return dataclasses.replace(o, **{which: _replace_at(orders, layer, _swap_across(rng, orders[layer], width))})

    def contains(self, spec: SubnetSpec) -> bool:
        """Whether this space can yield `spec` (a valid spec of the teacher is assumed)."""
        ids = [s.layer for s in spec.layers]
        if len(ids) < self.min_layers or (self.layers == "first" and ids != list(range(len(ids)))):
            return False
        if spec.n_embd not in self._embd_grid or (not self._fine and spec.embd != tuple(range(spec.n_embd))):
            return False
        if self.widths == "uniform" and len({(len(s.heads), len(s.kv), len(s.mlp)) for s in spec.layers}) > 1:
            return False
        for s in spec.layers:
            gg, mg, dg = self._grids(s.layer)
            if len(s.kv) not in gg or len(s.heads) // len(s.kv) not in mg or len(s.mlp) not in dg:
                return False
            coarse = (s.kv == tuple(range(len(s.kv))) and s.mlp == tuple(range(len(s.mlp)))
                      and s.heads == coarse_heads(len(s.heads), s.kv, self._group_size(s.layer)))
            if not self._fine and not coarse:
                return False
        return True

    def param_range(self) -> tuple[int, int]:
        """The smallest and largest parameter count in the space."""
        n = self.teacher.n_layer
        w = _Widths(e=0, k=0, g=(0,) * n, m=(0,) * n, d=(0,) * n)
        o = _Orders(embd=(), layers=tuple(range(n)), groups=(), heads=(), mlp=())
        return self._count(self._scaled(w, 0.0, grow=False), o), self._count(self._scaled(w, 1.0, grow=True), o)

    def size(self) -> int:
        """The exact number of distinct specs in the space."""
        cfg = self.teacher
        embd = sum(self._ways(cfg.n_embd, e) for e in self._embd_grid)

        def ways(i: int, power: int = 1) -> int:
            """Sum over the widths of layer i of (ways to pick its units)^power; groups and MLP factor apart."""
            gg, mg, dg = self._grids(i)
            s = cfg.layers[i]
            attention = sum((self._ways(s.n_kv, g) * self._ways(self._group_size(i), m) ** g) ** power
                            for g in gg for m in mg)
            return attention * sum(self._ways(s.mlp, d) ** power for d in dg)

        if self.widths == "uniform":  # the same widths in every kept layer, units chosen per layer
            sets = {k: 1 if self.layers == "first" else math.comb(cfg.n_layer, k) for k in self._depth_grid}
            return embd * sum(n * ways(0, power=k) for k, n in sets.items())
        per_layer = [ways(i) for i in range(cfg.n_layer)]
        if self.layers == "first":
            return embd * sum(math.prod(per_layer[:k]) for k in self._depth_grid)
        subsets = _elementary_symmetric(per_layer)
        return embd * sum(subsets[k] for k in self._depth_grid)

    def _ways(self, n: int, k: int) -> int:
        return math.comb(n, k) if self._fine else 1


def check_space_name(name: str) -> None:
    if name not in SPACES:
        raise UsageError(f"search space {name!r} is unknown", f"use one of {', '.join(SPACES)}")


def make_space(name: str, teacher: DecoderConfig, layers: str | None = None, multiple: int = 8,
               min_layers: int = 1) -> SearchSpace:
    """One of `SPACES` over `teacher`; `layers` overrides its default layer selection ("first"/"subset")."""
    check_space_name(name)
    selection, widths, default_layers = SPACES[name]
    return SearchSpace(name=name, teacher=teacher, selection=selection, widths=widths,
                       layers=layers or default_layers, multiple=multiple, min_layers=min_layers)


# ---------------------------------------------------------------- small helpers

def _shuffled(rng: random.Random, items: tuple[int, ...]) -> tuple[int, ...]:
    out = list(items)
    rng.shuffle(out)
    return tuple(out)


def _neighbour(rng: random.Random, grid: tuple[int, ...], value: int, reach: int | None = None) -> int:
    """A different grid value within `reach` steps (default: an eighth of the grid, at least 1)."""
    if len(grid) == 1:
        return value
    i = grid.index(value)
    reach = reach or max(1, len(grid) // 8)
    options = [j for j in range(max(0, i - reach), min(len(grid), i + reach + 1)) if j != i]
    return grid[rng.choice(options)]


def _swap_across(rng: random.Random, order: tuple[int, ...], width: int) -> tuple[int, ...]:
    """`order` with one of its first `width` entries swapped with one of the rest."""
    if not 0 < width < len(order):
        return order
    i, j = rng.randrange(width), rng.randrange(width, len(order))
    out = list(order)
    out[i], out[j] = out[j], out[i]
    return tuple(out)


def _replace_at(items: tuple, index: int, value: object) -> tuple:
    return (*items[:index], value, *items[index + 1:])


def _elementary_symmetric(values: list[int]) -> list[int]:
    """e[k] = sum over all k-subsets of the product of their values (the ways to keep k layers)."""
    e = [1] + [0] * len(values)
    for v in values:
        for j in range(len(values), 0, -1):
            e[j] += e[j - 1] * v
    return e
