"""What a sub-network is: which teacher layers, embedding channels, heads and neurons it keeps.

A `SubnetSpec` is plain data that names units of one teacher. Its JSON form is compact: a
count means "the first n" (coarse), a list names indices (fine-grained), and widths given at
the top level apply to every kept layer:

    {"embd": 384, "layers": 20, "heads": 6, "kv": 2, "mlp": 768}
    {"embd": [0, 5, ...], "layers": [{"layer": 0, "heads": [0, 2], "kv": [0], "mlp": [3, 9, ...]}, ...]}

Grouped-query attention. Query head h of a teacher layer belongs to key/value group
h // (n_head / n_kv). A kept query head needs its group kept, and every kept group keeps the
same number m of query heads, so the student is again GQA with n_head = n_kv * m. Heads are
kept in teacher order, so student head j belongs to student group j // m. A coarse head
count n with g groups means the first n / g heads of each of the first g groups (for a
multi-head-attention teacher, simply the first n heads).

Index lists within a layer are sets: they are stored sorted, which does not change the
function. Kept layers must be given in increasing order: reordering layers is not a sub-network.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headstart.errors import UsageError
from headstart.model.decoder import DecoderConfig, LayerShape

Indices = tuple[int, ...]
_SPEC_FIX = "fix the spec (its JSON form is in `headstart extract --help`)"


@dataclass(frozen=True)
class LayerSpec:
    """One kept teacher layer and the units it keeps, as sorted teacher indices."""

    layer: int
    heads: Indices  # query heads
    kv: Indices  # key/value groups
    mlp: Indices  # MLP neurons


@dataclass(frozen=True)
class SubnetSpec:
    """A sub-network of a teacher; hashable, so searches can de-duplicate candidates."""

    embd: Indices
    layers: tuple[LayerSpec, ...]

    @property
    def n_embd(self) -> int:
        return len(self.embd)

    def shapes(self) -> list[LayerShape]:
        return [LayerShape(n_head=len(s.heads), n_kv=len(s.kv), mlp=len(s.mlp)) for s in self.layers]

    def to_dict(self, teacher: DecoderConfig) -> dict[str, Any]:
        """The compact JSON form: counts where the selection is coarse, shared widths at the top."""
        per_layer = [_compact_layer(s, teacher.layers[s.layer]) for s in self.layers]
        out: dict[str, Any] = {"embd": _compact(self.embd)}
        widths = [{k: v for k, v in d.items() if k != "layer"} for d in per_layer]
        if all(w == widths[0] for w in widths) and all(not isinstance(v, list) for v in widths[0].values()):
            layer_ids = [s.layer for s in self.layers]
            out["layers"] = _compact(tuple(layer_ids))
            return out | widths[0]
        out["layers"] = per_layer
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], teacher: DecoderConfig) -> SubnetSpec:
        """Parse the JSON form against `teacher` and validate it; errors are UsageErrors naming the fix."""
        return parse_spec(data, teacher)

    def summary(self) -> str:
        """One line for people: depth, kept layers, and each width (a range when layers differ)."""
        ids = [s.layer for s in self.layers]
        where = f"first {len(ids)}" if ids == list(range(len(ids))) else str(ids)

        def spread(values: list[int]) -> str:
            return str(values[0]) if len(set(values)) == 1 else f"{min(values)}-{max(values)}"

        shapes = self.shapes()
        return (f"{len(ids)} layers ({where}), embd {self.n_embd}, heads {spread([s.n_head for s in shapes])} "
                f"(kv {spread([s.n_kv for s in shapes])}), mlp {spread([s.mlp for s in shapes])}")


def load_spec(path: str | Path, teacher: DecoderConfig) -> SubnetSpec:
    """Read a spec: its JSON itself (`{"layers": 2}`), or a file holding the spec or any JSON object holding it
    under "spec" (subnet.json, search results)."""
    inline = str(path).lstrip().startswith("{") and not Path(path).is_file()
    what = "spec" if inline else f"spec file {path}"
    if not inline and not Path(path).is_file():
        raise UsageError(f"{what} does not exist", "give a sub-network spec (JSON) or the path of a file holding one")
    try:
        data = json.loads(str(path) if inline else Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{what} is not valid JSON ({err})", "fix or re-create it") from None
    if isinstance(data, dict) and isinstance(data.get("spec"), dict):
        data = data["spec"]
    return parse_spec(data, teacher)


def full_spec(teacher: DecoderConfig) -> SubnetSpec:
    """The whole teacher, as a spec."""
    return SubnetSpec(
        embd=tuple(range(teacher.n_embd)),
        layers=tuple(LayerSpec(i, tuple(range(s.n_head)), tuple(range(s.n_kv)), tuple(range(s.mlp)))
                     for i, s in enumerate(teacher.layers)))


def student_config(teacher: DecoderConfig, spec: SubnetSpec) -> DecoderConfig:
    """The `DecoderConfig` of the model that `spec` cuts out of `teacher` (not validated here)."""
    return dataclasses.replace(teacher, n_embd=spec.n_embd, layers=spec.shapes())


def coarse_heads(n_head: int, kv: Indices, group_size: int) -> Indices:
    """The first n_head / len(kv) query heads of each listed group (the coarse meaning of a head count)."""
    per_group = n_head // len(kv)
    return tuple(g * group_size + j for g in kv for j in range(per_group))


# ---------------------------------------------------------------- parsing and validation

_TOP_KEYS = {"embd", "layers", "heads", "kv", "mlp"}
_LAYER_KEYS = {"layer", "heads", "kv", "mlp"}


def parse_spec(data: dict[str, Any], teacher: DecoderConfig) -> SubnetSpec:
    if not isinstance(data, dict):
        raise UsageError("a sub-network spec must be a JSON object", _SPEC_FIX)
    _no_unknown_keys(data, _TOP_KEYS, "the spec")
    embd = _selection(data.get("embd"), teacher.n_embd, "embedding channel")
    layers = data.get("layers", teacher.n_layer)
    if isinstance(layers, list) and layers and all(isinstance(x, dict) for x in layers):
        shared = _TOP_KEYS & data.keys() - {"embd", "layers"}
        if shared:
            raise UsageError(f"the spec gives {sorted(shared)} both at the top and per layer", _SPEC_FIX)
        entries = layers
    else:
        ids = _selection(layers, teacher.n_layer, "layer", ordered=True)
        entries = [{"layer": i} | {k: data[k] for k in ("heads", "kv", "mlp") if k in data} for i in ids]
    spec = SubnetSpec(embd=embd, layers=tuple(_parse_layer(e, teacher) for e in entries))
    validate(spec, teacher)
    return spec


def _parse_layer(entry: dict[str, Any], teacher: DecoderConfig) -> LayerSpec:
    _no_unknown_keys(entry, _LAYER_KEYS, "a layer entry")
    layer = entry.get("layer")
    if "layer" not in entry:
        raise UsageError(f"a per-layer entry {json.dumps(entry)} has no \"layer\"",
                         'give each entry the teacher layer it keeps: {"layer": 0, ...}')
    if not isinstance(layer, int) or isinstance(layer, bool) or not 0 <= layer < teacher.n_layer:
        raise UsageError(f"layer {layer!r} is not a teacher layer (0..{teacher.n_layer - 1})", _SPEC_FIX)
    shape = teacher.layers[layer]
    group_size = shape.n_head // shape.n_kv
    where = f"layer {layer}"
    heads_value = entry.get("heads", shape.n_head)
    kv_value = entry.get("kv")
    if kv_value is None:
        if isinstance(heads_value, int) and not isinstance(heads_value, bool):
            # the fewest groups that can hold n heads
            kv_value = max(1, -(-heads_value // group_size)) if heads_value > 0 else 0
        else:
            heads_list = _selection(heads_value, shape.n_head, f"{where}: query head")
            kv_value = sorted({h // group_size for h in heads_list})
    kv = _selection(kv_value, shape.n_kv, f"{where}: key/value group")
    if isinstance(heads_value, int) and not isinstance(heads_value, bool):
        if not kv:
            raise UsageError(f"{where} keeps no key/value group", "keep at least one group per kept layer")
        if heads_value % len(kv) or not 0 < heads_value // len(kv) <= group_size:
            raise UsageError(
                f"{where}: {heads_value} query heads cannot be split evenly over {len(kv)} key/value groups "
                f"of {group_size} heads each", f"use a multiple of {len(kv)} up to {len(kv) * group_size}")
        heads = coarse_heads(heads_value, kv, group_size)
    else:
        heads = _selection(heads_value, shape.n_head, f"{where}: query head")
    mlp = _selection(entry.get("mlp", shape.mlp), shape.mlp, f"{where}: MLP neuron")
    return LayerSpec(layer=layer, heads=heads, kv=kv, mlp=mlp)


def validate(spec: SubnetSpec, teacher: DecoderConfig) -> None:
    """Raise a UsageError unless `teacher` can hold `spec` and the student is a valid decoder."""
    if not spec.embd:
        raise UsageError("the spec keeps no embedding channel", "keep at least one")
    _in_range(spec.embd, teacher.n_embd, "embedding channel")
    if not spec.layers:
        raise UsageError("the spec keeps no layer", "keep at least one layer")
    ids = [s.layer for s in spec.layers]
    if any(b <= a for a, b in itertools.pairwise(ids)):
        raise UsageError(f"kept layers {ids} are not in increasing order without repeats",
                         "list each kept teacher layer once, in the teacher's order")
    _in_range(tuple(ids), teacher.n_layer, "layer")
    for s in spec.layers:
        _validate_layer(s, teacher.layers[s.layer])


def _validate_layer(s: LayerSpec, shape: LayerShape) -> None:
    where = f"layer {s.layer}"
    for name, idx, limit in (("query head", s.heads, shape.n_head), ("key/value group", s.kv, shape.n_kv),
                             ("MLP neuron", s.mlp, shape.mlp)):
        if not idx:
            raise UsageError(f"{where} keeps no {name}", f"keep at least one {name} in every kept layer, "
                             "or drop the layer")
        _in_range(idx, limit, f"{where}: {name}")
    group_size = shape.n_head // shape.n_kv
    per_group: dict[int, int] = {}
    for h in s.heads:
        per_group[h // group_size] = per_group.get(h // group_size, 0) + 1
    orphans = sorted(set(per_group) - set(s.kv))
    if orphans:
        raise UsageError(f"{where}: query heads of key/value group(s) {orphans} are kept but the group is not",
                         "keep the group of every kept query head (head h is in group h // "
                         f"{group_size})")
    empty = sorted(set(s.kv) - set(per_group))
    if empty:
        raise UsageError(f"{where}: key/value group(s) {empty} keep no query head",
                         "drop those groups or keep some of their heads")
    if len(set(per_group.values())) > 1:
        raise UsageError(f"{where}: key/value groups keep unequal numbers of query heads {per_group}",
                         "keep the same number of query heads in every kept group")


def _in_range(idx: Indices, limit: int, name: str) -> None:
    if list(idx) != sorted(set(idx)):
        raise UsageError(f"{name} indices {list(idx)} repeat or are unsorted", "list each index once, sorted")
    if idx[0] < 0 or idx[-1] >= limit:
        bad = idx[0] if idx[0] < 0 else idx[-1]
        raise UsageError(f"{name} {bad} is out of range: the teacher has {limit} (0..{limit - 1})", _SPEC_FIX)


def _selection(value: Any, limit: int, name: str, ordered: bool = False) -> Indices:
    """A count (the first n) or a list of indices, as sorted indices; `ordered` lists must already be sorted."""
    if value is None:
        return tuple(range(limit))
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= limit:
            raise UsageError(f"{name}s: {value} asked for, but the teacher has {limit}", f"use at most {limit}")
        return tuple(range(value))
    if not isinstance(value, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        raise UsageError(f"{name}s must be a count or a list of indices, got {value!r}", _SPEC_FIX)
    if len(set(value)) != len(value):
        raise UsageError(f"{name} indices {value} repeat", "list each index once")
    if ordered and value != sorted(value):
        raise UsageError(f"{name}s {value} are not in increasing order", f"list the {name}s in the teacher's order")
    out = tuple(sorted(value))
    if out:
        _in_range(out, limit, name)
    return out


def _no_unknown_keys(data: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UsageError(f"{what} has unknown key(s) {unknown}", f"use only {sorted(allowed)}")


def _compact(idx: Indices) -> int | list[int]:
    return len(idx) if idx == tuple(range(len(idx))) else list(idx)


def _compact_layer(s: LayerSpec, shape: LayerShape) -> dict[str, Any]:
    kv = _compact(s.kv)
    coarse = isinstance(kv, int) and s.heads == coarse_heads(len(s.heads), s.kv, shape.n_head // shape.n_kv)
    return {"layer": s.layer, "heads": len(s.heads) if coarse else list(s.heads), "kv": kv, "mlp": _compact(s.mlp)}
