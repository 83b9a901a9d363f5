"""The comparison: the validation schedule it reads, the crossing arithmetic, the arms a recipe asks for.
(Baseline arms run by `headstart run` are tested in test_pipeline.py.)"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from headstart.compare import ARMS, CurvePoint, first_crossing, parse_arms
from headstart.compare.arms import arm_train_section
from headstart.compare.crossing import last_doubling, perplexity_at
from headstart.compare.report import ArmRuns, compare, comparison_table, race_to_teacher, sweep_lines
from headstart.errors import UsageError
from headstart.train.loop import validation_steps


def test_validation_runs_at_step_0_every_eval_every_steps_the_last_and_log_spaced_early_on():
    assert validation_steps(25, 10, False) == {0, 10, 20, 25}
    assert validation_steps(25, 10, True) == {0, 1, 2, 4, 8, 10, 20, 25}
    assert validation_steps(3, 10, True) == {0, 1, 2, 3}


def curve(*points: tuple[int, float, float]) -> list[CurvePoint]:
    return [CurvePoint(i, t, f, p) for i, (t, f, p) in enumerate(points)]


def test_the_crossing_is_interpolated_in_log_perplexity_with_flops_at_the_same_fraction():
    c = first_crossing(curve((0, 0.0, 400.0), (100, 1e6, 100.0), (200, 2e6, 25.0)), 50.0)
    # log 50 is halfway between log 100 and log 25
    assert c.tokens == pytest.approx(150) and c.flops == pytest.approx(1.5e6) and not c.bound
    exact = first_crossing(curve((0, 0.0, 400.0), (100, 1e6, 100.0)), 100.0)
    assert exact.tokens == pytest.approx(100)


def test_a_curve_that_starts_below_the_target_is_a_bound_and_one_that_never_reaches_it_is_none():
    early = first_crossing(curve((10, 5.0, 40.0), (20, 10.0, 30.0)), 50.0)
    assert (early.tokens, early.flops, early.bound) == (10, 5.0, True)
    never = first_crossing(curve((0, 0.0, 400.0), (100, 1e6, 100.0)), 50.0)
    assert not never.reached and never.tokens is None
    # the first time it gets there counts, not a later one
    again = first_crossing(curve((0, 0, 400.0), (100, 100, 50.0), (200, 200, 60.0), (300, 300, 40.0)), 50.0)
    assert again.tokens == pytest.approx(100)


def test_the_last_doubling_says_how_far_from_its_plateau_a_run_ended():
    c = curve((0, 0.0, 400.0), (100, 1e6, 100.0), (200, 2e6, 80.0))
    assert perplexity_at(c, 50) == pytest.approx(200.0)  # halfway in log-perplexity between 400 and 100
    assert perplexity_at(c, 300) is None
    assert last_doubling(c) == pytest.approx(0.2)  # 100 at 100 tokens, 80 at 200
    assert last_doubling(curve((0, 0.0, 400.0))) is None
    result = {"reference": "random", "arms": {"random": {"label": "from scratch", "tokens": 200, "sweep": None,
                                                        "last_doubling": 0.2}}}
    line = "from scratch: its last doubling of tokens (to 200) lowered perplexity by 20.0% (how far from its plateau"
    assert line in sweep_lines(result)


def test_the_table_says_bounds_ratios_and_unreached():
    result = {"target_perplexity": 50.0, "reference": "random", "arms": {
        "random": {"label": "from scratch", "params": 2e6, "lr": "0.004", "perplexity": 50.0,
                   "to_reference": {"tokens": 1e6, "flops": 1e12, "bound": False, "tokens_ratio": 1.0,
                                    "flops_ratio": 1.0}},
        "student": {"label": "student", "params": 2e6, "lr": "0.002", "perplexity": 40.0,
                    "to_reference": {"tokens": 1.25e5, "flops": 4e11, "bound": False, "tokens_ratio": 8.0,
                                     "flops_ratio": 2.5}},
        "bad": {"label": "bad", "params": 2e6, "lr": "0.002", "perplexity": 90.0,
                "to_reference": {"tokens": None, "flops": None, "bound": False, "tokens_ratio": None,
                                 "flops_ratio": None}},
    }}
    table = comparison_table(result)
    assert "| student | 2.00M | 0.002 | 40.00 | 125K | 8.00x | 400G | 2.50x |" in table
    assert "| bad | 2.00M | 0.002 | 90.00 | not reached | - | not reached | - |" in table


def test_an_arm_changes_only_what_defines_it():
    train = {"kd": "forward_kl", "kd_weight": 0.5, "tokens": "1M", "lr": 0.002, "seed": 3}
    assert arm_train_section(train, ARMS["random"], {"lr": [0.004]}, 0.004) == {
        "tokens": "1M", "lr": 0.004, "seed": 3, "random_init": True}
    assert arm_train_section(train, ARMS["firstk_kd"], {"lr": [0.002]}, 0.002) == train
    plans = parse_arms(["random", "subnet_ce"], {"half_kd": {"kd_until": 0.5, "lr": [1e-3, 2e-3]}}, train, "r")
    assert [(p.name, p.folder, p.overrides) for p in plans] == [
        ("random", "baselines/random", {"lr": [0.002]}), ("subnet_ce", "baselines/subnet_ce", {"lr": [0.002]}),
        ("half_kd", "variants/half_kd", {"kd_until": 0.5, "lr": [1e-3, 2e-3]})]
    assert arm_train_section(train, plans[2].arm, plans[2].overrides, 1e-3) == {**train, "kd_until": 0.5, "lr": 1e-3}


@pytest.mark.parametrize(("baselines", "train", "expected"), [
    ({"randm": {}}, {"kd": "forward_kl"}, "baseline 'randm' is unknown — did you mean random?"),
    ({"random_kd": {}}, {}, "random_kd distils with the recipe's KD, and train sets no kd"),
    ({"subnet_ce": {}}, {}, "subnet_ce is the student itself"),
    ({"random": {"kd": "js"}}, {"kd": "forward_kl"}, "baselines.random.kd is set by the pipeline or the arm itself"),
    ({"random": {"lr": [True]}}, {"kd": "forward_kl"}, "lr is not a rate or a list of rates"),
])  # fmt: skip
def test_a_bad_baselines_section_is_refused_with_what_to_do(baselines, train, expected):
    with pytest.raises(UsageError, match=expected.replace("?", r"\?")):
        parse_arms(baselines, None, train, "recipe r")


def test_a_variant_may_not_take_a_baselines_name():
    with pytest.raises(UsageError, match="variant name 'random' is taken"):
        parse_arms(None, {"random": {}}, {"kd": "forward_kl"}, "recipe r")


def curve_arm(where: Path, name: str, points: list[tuple[int, float]]) -> ArmRuns:
    """An arm of one run whose validation curve is `points` (tokens, perplexity), 2 FLOPs a token."""
    folder = where / name
    folder.mkdir()
    rows = [{"step": i, "val_ppl": p, "tokens": t, "student_flops": 2.0 * t, "teacher_flops": 0.0}
            for i, (t, p) in enumerate(points)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ArmRuns(name, name, 1, {"0.002": Path(folder)})


def test_the_race_ends_where_the_reference_first_reached_its_final_perplexity(tmp_path):
    """A from-scratch curve that dips below its final perplexity got there first at the dip: its own row is
    1.00x, and every ratio is against that point, not its last."""
    def arm(name: str, points: list[tuple[int, float]]) -> ArmRuns:
        return curve_arm(tmp_path, name, points)

    result = compare([arm("random", [(0, 400.0), (800, 57.0), (1000, 60.0)]),
                      arm("student", [(0, 100.0), (400, 60.0)])], "random")
    assert result["target_perplexity"] == 60.0
    assert result["arms"]["random"]["to_reference"]["tokens_ratio"] == pytest.approx(1.0)
    reached = result["arms"]["random"]["to_reference"]["tokens"]
    assert reached < 800 and result["arms"]["student"]["to_reference"]["tokens_ratio"] == pytest.approx(reached / 400)
    # a student chosen by a selection that spent 300 tokens (and 600 FLOPs) first: charged from its step 0
    charged = dataclasses.replace(arm("selected", [(0, 100.0), (400, 60.0)]), spent_before=(300, 600.0))
    row = compare([arm("random2", [(0, 400.0), (800, 57.0), (1000, 60.0)]), charged], "random2")["arms"]["selected"]
    assert row["curve"][0][:2] == [300, 600.0] and row["to_reference"]["tokens"] == pytest.approx(700)


def test_a_reference_below_the_teacher_is_raced_to_the_teachers_perplexity_too(tmp_path):
    """A from-scratch arm that ends below the teacher (40 against 50) is out of a distilled arm's reach: the
    arms are raced to the teacher's perplexity as well, the reference's ratios from where it first reached it."""
    arms = [curve_arm(tmp_path, "random", [(0, 1000.0), (1000, 300.0), (2000, 40.0)]),
            curve_arm(tmp_path, "student", [(0, 200.0), (1000, 60.0), (2000, 45.0)])]
    comparison = compare(arms, "random")
    assert comparison["arms"]["student"]["to_reference"]["tokens"] is None  # never reaches 40
    to_teacher = race_to_teacher(arms, comparison, 50.0)
    assert to_teacher["target_perplexity"] == 50.0 and to_teacher["reference"] == "random"
    # log-interpolated: from scratch reaches 50 at 1,889 tokens (300 -> 40), the student at 1,634 (60 -> 45)
    reached = to_teacher["arms"]["student"]["to_reference"]
    assert reached["tokens"] == pytest.approx(1633.76, abs=0.01)
    assert reached["tokens_ratio"] == pytest.approx(1889.25 / 1633.76, rel=1e-4)
    assert to_teacher["arms"]["random"]["to_reference"]["tokens_ratio"] == pytest.approx(1.0)
    assert race_to_teacher(arms, comparison, 30.0) is None  # the reference ended above the teacher
    # a target the reference never reaches: the arms' crossings, and no ratios
    never = compare(arms, "random", 20.0)
    assert never["arms"]["random"]["to_reference"]["tokens_ratio"] is None
    assert "| student | 0.00M | 0.002 | 45.00 | not reached | - | not reached | - |" in comparison_table(never)
    # the pipeline's report shows both races, and says why the second
    from headstart.pipeline import _comparison_section

    text = _comparison_section(comparison, to_teacher)
    assert "ended below the teacher's perplexity, 50.00" in text and comparison_table(to_teacher) in text
    assert "teacher's perplexity" not in _comparison_section(comparison, None)
