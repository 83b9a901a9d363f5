"""The committed recipes stay valid: every key is known and every value parses, as the commands check them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headstart.model.checkpoint import decoder_config
from headstart.pipeline import load_pipeline, plan
from headstart.settings import make, read_recipe
from headstart.train.config import TrainConfig

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def test_the_demo_pipeline_recipe_plans_every_step():
    recipe = load_pipeline(RECIPES / "demo.yaml")
    steps = plan(recipe)
    assert [step.name for step in steps] == [
        "prepare", "importance", "search", "extract", "train", "random:train lr=0.002", "random:train lr=0.004",
        "random:train lr=0.008", "subnet_ce:train", "eval", "eval"]
    for step in steps:
        step.config.validate()
        if step.command == "train":
            cfg = step.config
            assert cfg.kd == ("forward_kl" if step.name == "train" else None)
            assert cfg.random_init == step.name.startswith("random")


STUDY = sorted((RECIPES / "study").glob("*.yaml"))


@pytest.mark.parametrize("name", ["demo.yaml", *(f"study/{p.name}" for p in STUDY)])
def test_a_printed_pipeline_recipe_plans_the_same_steps(name, tmp_path):
    import yaml

    recipe = load_pipeline(RECIPES / name)
    printed = tmp_path / "resolved.yaml"
    printed.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))  # as --print-config does
    assert plan(load_pipeline(printed)) == plan(recipe)


@pytest.mark.parametrize("name", ["train.yaml", "quarter-student.yaml"])
def test_the_scale_teacher_training_recipes_parse(name):
    make(TrainConfig, read_recipe(TrainConfig, RECIPES / "scale-teacher" / name))


@pytest.mark.parametrize("name", ["architecture.json", "quarter-student.json"])
def test_the_scale_teacher_architectures_parse(name):
    cfg = decoder_config(json.loads((RECIPES / "scale-teacher" / name).read_text()))
    assert cfg.family == "gpt_neox" and cfg.vocab_size == 4096


def test_the_comparison_model_is_a_quarter_of_the_teacher():
    from headstart.subnet import param_count

    read = lambda name: decoder_config(json.loads((RECIPES / "scale-teacher" / name).read_text()))  # noqa: E731
    assert 0.2 < param_count(read("quarter-student.json")) / param_count(read("architecture.json")) < 0.3


@pytest.mark.parametrize("path", STUDY, ids=lambda p: p.stem)
def test_every_study_recipe_plans_and_its_steps_parse(path):
    """Also that each search's bin holds a sub-network of its space, as `headstart run` checks before any step."""
    recipe = load_pipeline(path)
    assert str(recipe.out) == f"runs/study/{path.stem}" and str(recipe.data) == "runs/study/data"
    for step in plan(recipe):
        step.config.validate()
        if step.command == "search":
            step.config.check_bin()


def test_the_study_searches_its_headline_sub_network_the_same_way_wherever_it_is_trained():
    """The headline, KD losses and KD per FLOP train the same searched sub-network: their search settings agree."""
    recipes = [load_pipeline(RECIPES / "study" / f"{name}.yaml")
               for name in ("headline-25", "kd-losses", "kd-per-flop")]
    assert all(r.search == recipes[0].search and r.importance == recipes[0].importance for r in recipes)
