"""Search spaces: valid, deployable samples; bins hit directly; exact sizes; clear budget errors."""

from __future__ import annotations

import itertools
import random

import pytest

from headstart.errors import UsageError
from headstart.model import DecoderConfig, LayerShape
from headstart.subnet import Budget, make_space, param_count, parse_budget
from headstart.subnet.spaces import SPACES, human
from headstart.subnet.spec import LayerSpec, SubnetSpec, full_spec, validate

# SmolLM2-135M's shape: no weights are needed to search over it
SMOL = DecoderConfig(family="llama", vocab_size=49152, n_embd=576, head_size=64, norm="rmsnorm", mlp_kind="gated",
                     activation="silu", norm_bias=False, tie_embeddings=True, layers=[LayerShape(9, 3, 1536)] * 30)
SMOL_PARAMS = 134_515_008
ALL = [(name, layers) for name in SPACES for layers in ("first", "subset")]


def test_smollm2_shape_has_its_published_parameter_count():
    assert param_count(SMOL) == SMOL_PARAMS


@pytest.mark.parametrize(("name", "layers"), ALL)
@pytest.mark.parametrize("fraction", [0.5, 0.25])
def test_samples_land_in_the_bin_and_belong_to_the_space(name, layers, fraction):
    space = make_space(name, SMOL, layers=layers, multiple=64)
    # whole layers are 2.6% of SmolLM2 each: the layers space needs a wider bin
    budget = parse_budget(f"{fraction * 100}%", SMOL_PARAMS, tolerance=0.1 if name == "layers" else 0.02)
    rng = random.Random(0)
    for _ in range(4):
        spec = space.sample(rng, budget)
        validate(spec, SMOL)
        assert param_count(SMOL, spec) in budget
        assert space.contains(spec)
        assert_deployable(spec, multiple=64)


def assert_deployable(spec: SubnetSpec, multiple: int) -> None:
    assert spec.n_embd % multiple == 0 or spec.n_embd == SMOL.n_embd
    for s in spec.layers:
        assert len(s.heads) % len(s.kv) == 0
        assert len(s.mlp) % multiple == 0 or len(s.mlp) == SMOL.layers[0].mlp


@pytest.mark.parametrize(("name", "layers"), ALL)
def test_mutation_and_crossover_stay_in_the_space_and_the_bin(name, layers):
    space = make_space(name, SMOL, layers=layers)
    budget = parse_budget("40%", SMOL_PARAMS, tolerance=0.15 if name == "layers" else 0.05)
    rng = random.Random(1)
    a, b = space.sample(rng, budget), space.sample(rng, budget)
    children = [space.mutate(a, rng, budget) for _ in range(4)] + [space.crossover(a, b, rng, budget) for _ in range(4)]
    for child in children:
        validate(child, SMOL)
        assert space.contains(child) and param_count(SMOL, child) in budget
    assert any(child != a for child in children[:4])


@pytest.mark.parametrize("name", ["coarse-layerwise", "fine-layerwise"])
def test_mutation_changes_one_thing(name):
    space = make_space(name, SMOL)
    rng = random.Random(2)
    spec = space.sample(rng)
    child = space.mutate(spec, rng)
    before, after = {s.layer: s for s in spec.layers}, {s.layer: s for s in child.layers}
    changed_layers = sum(before.get(i) != after.get(i) for i in set(before) | set(after))
    assert child != spec
    assert (child.embd != spec.embd) + changed_layers <= 2  # swapping a kept layer for another touches two


def test_uniform_spaces_give_every_kept_layer_the_same_widths():
    rng = random.Random(3)
    for name in ("coarse-uniform", "fine-uniform"):
        spec = make_space(name, SMOL).sample(rng, parse_budget("30%", SMOL_PARAMS))
        assert len({(len(s.heads), len(s.kv), len(s.mlp)) for s in spec.layers}) == 1


def test_coarse_spaces_keep_prefixes_and_first_layers():
    spec = make_space("coarse-layerwise", SMOL).sample(random.Random(4))
    assert [s.layer for s in spec.layers] == list(range(len(spec.layers)))
    assert spec.embd == tuple(range(spec.n_embd))
    assert all(s.mlp == tuple(range(len(s.mlp))) and s.kv == tuple(range(len(s.kv))) for s in spec.layers)


def test_layers_space_keeps_every_width():
    spec = make_space("layers", SMOL).sample(random.Random(5), parse_budget("60%", SMOL_PARAMS, tolerance=0.03))
    full = full_spec(SMOL)
    assert spec.embd == full.embd and all(s == full.layers[s.layer] for s in spec.layers)


def test_repair_projects_a_foreign_spec_into_the_space_and_bin():
    fine = make_space("fine-layerwise", SMOL).sample(random.Random(6))
    space = make_space("coarse-uniform", SMOL)
    budget = parse_budget("20%", SMOL_PARAMS)
    fixed = space.repair(fine, budget, random.Random(0))
    assert space.contains(fixed) and param_count(SMOL, fixed) in budget


def test_repair_keeps_a_spec_already_in_the_bin():
    space = make_space("fine-layerwise", SMOL)
    budget = parse_budget("50%", SMOL_PARAMS)
    spec = space.sample(random.Random(7), budget)
    assert space.repair(spec, budget, random.Random(8)) == spec


def test_sampling_is_deterministic_in_the_seed():
    space = make_space("fine-layerwise", SMOL)
    budget = parse_budget("50%", SMOL_PARAMS)
    assert space.sample(random.Random(9), budget) == space.sample(random.Random(9), budget)
    assert space.sample(random.Random(9), budget) != space.sample(random.Random(10), budget)


def test_a_budget_outside_the_space_is_a_usage_error():
    space = make_space("layers", SMOL)
    with pytest.raises(UsageError, match="no layers sub-network has"):
        space.sample(random.Random(0), parse_budget("10M", SMOL_PARAMS))
    with pytest.raises(UsageError, match="choose a budget inside"):
        make_space("coarse-uniform", SMOL).sample(random.Random(0), Budget(200_000_000, 300_000_000))


def test_a_bin_narrower_than_the_width_steps_is_a_usage_error_naming_the_nearest_sizes():
    space = make_space("layers", SMOL)  # whole layers: one size per layer count
    with pytest.raises(UsageError, match="narrower than this space's width steps") as err:
        space.sample(random.Random(0), Budget(50_000_000, 50_000_100))
    sizes = {param_count(SMOL, space.sample(random.Random(i))) for i in range(200)}
    below, above = max(n for n in sizes if n < 50_000_000), min(n for n in sizes if n > 50_000_100)
    assert f"the nearest sizes it has: {human(below)} and {human(above)})" in str(err.value)


def test_unknown_space_and_non_uniform_teacher_are_usage_errors():
    with pytest.raises(UsageError, match="unknown"):
        make_space("coarse", SMOL)
    mixed = DecoderConfig(family="llama", vocab_size=10, n_embd=8, head_size=4,
                          layers=[LayerShape(2, 1, 8), LayerShape(1, 1, 8)])
    with pytest.raises(UsageError, match="same widths"):
        make_space("fine-uniform", mixed)
    assert make_space("fine-layerwise", mixed).sample(random.Random(0)) is not None


@pytest.mark.parametrize(("text", "lo", "hi"), [
    ("50M", 49_000_000, 51_000_000), ("50%", 65_912_354, 68_602_654), ("40M:60M", 40_000_000, 60_000_000),
    ("1.5B", 1_470_000_000, 1_530_000_000), ("2k", 1960, 2040),
])
def test_parse_budget(text, lo, hi):
    assert parse_budget(text, SMOL_PARAMS) == Budget(lo, hi)


@pytest.mark.parametrize("text", ["fifty", "60M:40M", "1:2:3", "-5M", "1.5", "2.4:2.6"])
def test_bad_budgets_are_usage_errors(text):
    with pytest.raises(UsageError, match=r"not a parameter count|empty or not positive|more than one"):
        parse_budget(text, SMOL_PARAMS)


def test_a_budget_written_as_a_fraction_points_to_the_percent_form():
    with pytest.raises(UsageError, match=r"less than one parameter.*e\.g\. 25%"):
        parse_budget("0.25", SMOL_PARAMS)


# A teacher small enough to enumerate every sub-network: 2 layers, 2 groups of 2 heads, 2 neurons, 3 channels.
TINY = DecoderConfig(family="llama", vocab_size=5, n_embd=3, head_size=2, layers=[LayerShape(4, 2, 2)] * 2)


def every_spec(cfg: DecoderConfig) -> list[SubnetSpec]:
    def subsets(n: int) -> list[tuple[int, ...]]:
        return [c for k in range(1, n + 1) for c in itertools.combinations(range(n), k)]

    per_layer = []
    for kv in subsets(2):
        for m in (1, 2):
            for picks in itertools.product(itertools.combinations(range(2), m), repeat=len(kv)):
                heads = tuple(sorted(g * 2 + p for g, ps in zip(kv, picks, strict=True) for p in ps))
                per_layer += [(heads, kv, mlp) for mlp in subsets(2)]
    out = []
    for embd in subsets(3):
        for layers in subsets(2):
            for units in itertools.product(per_layer, repeat=len(layers)):
                out.append(SubnetSpec(embd, tuple(LayerSpec(i, *u) for i, u in zip(layers, units, strict=True))))
    return out


@pytest.mark.parametrize(("name", "layers"), ALL)
def test_space_size_is_the_exact_number_of_member_specs(name, layers):
    specs = every_spec(TINY)
    for multiple in (1, 2):
        space = make_space(name, TINY, layers=layers, multiple=multiple)
        members = [s for s in specs if space.contains(s)]
        assert space.size() == len(members)
        counts = [param_count(TINY, s) for s in members]
        assert space.param_range() == (min(counts), max(counts))


def test_a_budget_reads_counts_as_the_flags_do():
    """The suffixes of `--tokens 20M` (settings.SUFFIXES), in either case, and a percentage of the teacher."""
    assert parse_budget("50M", 10**9) == Budget(49_000_000, 51_000_000)
    assert parse_budget("1.2b", 10**10) == Budget(1_176_000_000, 1_224_000_000)
    assert parse_budget("40k:60K", 1) == Budget(40_000, 60_000)
    assert parse_budget("0.001T:0.002t", 1) == Budget(10**9, 2 * 10**9)
    assert parse_budget("50%", 1000) == Budget(490, 510)
