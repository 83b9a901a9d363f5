"""The sub-network spec: its compact JSON form, and clear errors for specs a teacher cannot hold."""

from __future__ import annotations

import json

import pytest
from subnet_helpers import random_fine_spec, tiny_teacher

from headstart.errors import UsageError
from headstart.model import DecoderConfig, LayerShape
from headstart.subnet.spec import LayerSpec, SubnetSpec, full_spec, load_spec, student_config, validate

# a GQA teacher: 6 query heads in 2 key/value groups of 3
GQA = DecoderConfig(family="llama", vocab_size=50, n_embd=16, head_size=4, norm="rmsnorm", mlp_kind="gated",
                    activation="silu", norm_bias=False, layers=[LayerShape(6, 2, 20)] * 3)


def test_coarse_spec_is_written_as_counts_and_reads_back():
    data = {"embd": 8, "layers": 2, "heads": 4, "kv": 2, "mlp": 12}
    spec = SubnetSpec.from_dict(data, GQA)
    assert spec.embd == tuple(range(8))
    assert [s.layer for s in spec.layers] == [0, 1]
    assert spec.layers[0].heads == (0, 1, 3, 4)  # the first 2 heads of each of the first 2 groups
    assert spec.to_dict(GQA) == data
    assert SubnetSpec.from_dict(json.loads(json.dumps(spec.to_dict(GQA))), GQA) == spec


def test_fine_spec_round_trips_through_json(family, tmp_path):
    teacher = tiny_teacher(family, tmp_path)
    for seed in range(5):
        spec = random_fine_spec(teacher, seed)
        again = SubnetSpec.from_dict(json.loads(json.dumps(spec.to_dict(teacher.config))), teacher.config)
        assert again == spec


def test_missing_widths_mean_the_whole_teacher():
    assert SubnetSpec.from_dict({}, GQA) == full_spec(GQA)


def test_head_count_without_groups_takes_the_fewest_groups():
    spec = SubnetSpec.from_dict({"layers": [{"layer": 1, "heads": 3}]}, GQA)
    assert spec.layers[0].kv == (0,) and spec.layers[0].heads == (0, 1, 2)


def test_groups_follow_named_heads_when_not_given():
    spec = SubnetSpec.from_dict({"layers": [{"layer": 0, "heads": [1, 4]}]}, GQA)
    assert spec.layers[0].kv == (0, 1)


def test_student_config_has_the_kept_widths():
    spec = SubnetSpec.from_dict({"embd": [1, 5, 7], "layers": [{"layer": 2, "heads": [3, 4], "mlp": [0, 9]}]}, GQA)
    cfg = student_config(GQA, spec)
    assert cfg.n_embd == 3 and cfg.layers == [LayerShape(n_head=2, n_kv=1, mlp=2)]


@pytest.mark.parametrize(("data", "words"), [
    ({"embd": [0, 16]}, "embedding channel 16 is out of range"),
    ({"layers": [0, 3]}, "layer 3 is out of range"),
    ({"layers": [2, 0]}, "not in increasing order"),
    ({"layers": [{"layer": 0, "heads": [0, 3], "kv": [0]}]}, "group(s) [1] are kept but the group is not"),
    ({"layers": [{"layer": 0, "heads": [0, 1, 3], "kv": [0, 1]}]}, "unequal numbers of query heads"),
    ({"layers": [{"layer": 0, "heads": [0], "kv": [0, 1]}]}, "group(s) [1] keep no query head"),
    ({"layers": [{"layer": 0, "heads": 5, "kv": 2}]}, "cannot be split evenly"),
    ({"layers": [{"layer": 0, "mlp": []}]}, "keeps no MLP neuron"),
    ({"layers": [{"layer": 0, "heads": []}]}, "keeps no query head"),
    ({"layers": []}, "keeps no layer"),
    ({"embd": 0}, "keeps no embedding channel"),
    ({"embd": [1, 1]}, "repeat"),
    ({"mlp": 21}, "the teacher has 20"),
    ({"heads": 6, "layers": [{"layer": 0}]}, "both at the top and per layer"),
    ({"emb": 4}, "unknown key"),
    ({"embd": "all"}, "must be a count or a list"),
])
def test_invalid_specs_are_usage_errors_that_name_the_problem(data, words):
    with pytest.raises(UsageError) as err:
        SubnetSpec.from_dict(data, GQA)
    assert words in err.value.problem


def test_programmatic_specs_are_validated_too():
    bad = SubnetSpec(embd=(0, 1), layers=(LayerSpec(0, heads=(0, 1, 4), kv=(0, 1), mlp=(0,)),))
    with pytest.raises(UsageError, match="unequal"):
        validate(bad, GQA)


def test_load_spec_reads_a_spec_or_a_record_holding_one(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"embd": 8}))
    (tmp_path / "b.json").write_text(json.dumps({"teacher": "x", "spec": {"embd": 8}}))
    assert load_spec(tmp_path / "a.json", GQA) == load_spec(tmp_path / "b.json", GQA)
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_spec(tmp_path / "c.json", GQA)
    with pytest.raises(UsageError, match="does not exist"):
        load_spec(tmp_path / "missing.json", GQA)
