"""`headstart run`: the whole pipeline from one recipe, resumable, on one process or two torchrun ranks."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from train_support import make_data, make_model, one_thread, run_cli, word_tokenizer  # noqa: F401 (one_thread: autouse)

from headstart.cli.main import main
from headstart.data import load_tokenizer, tokenizer_fingerprint
from headstart.model.card import read_card_facts
from headstart.pipeline import load_pipeline, plan


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("pipeline")
    make_data(root)  # root/corpus.jsonl and root/tokenizer
    return {"root": root, "teacher": make_model(root / "teacher", root / "tokenizer", "teacher", seed=1)}


def recipe(world: dict, name: str, **changes) -> Path:
    raw = {
        "out": str(world["root"] / name),
        "teacher": str(world["teacher"]),
        "prepare": {"input": [str(world["root"] / "corpus.jsonl")], "val_fraction": 0.1},
        "search": {"space": "fine-layerwise", "budget": "50%", "evals": 4, "tokens": 256, "seq_len": 16},
        "train": {"kd": "forward_kl", "tokens": 1024, "seq_len": 16, "batch_size": 4, "micro_batch_size": 4,
                  "eval_every": 4, "eval_tokens": 256},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            raw[section] = {**raw.get(section, {}), field: value}
        elif value is None:
            raw.pop(section, None)
        else:
            raw[section] = value
    path = world["root"] / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_json(capsys, config: Path) -> tuple[dict, str]:
    assert main(["run", "--config", str(config), "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out.strip().splitlines()[-1]), out


def test_one_recipe_runs_every_step_and_a_second_run_resumes_them(world, capsys):
    config = recipe(world, "full", importance={"tokens": 512, "seq_len": 16})
    result, _ = run_json(capsys, config)
    out = world["root"] / "full"
    for artifact in ("data/manifest.json", "importance/importance.json", "search/best.json", "student/config.json",
                     "train/final/config.json", "eval.json", "report.md", "training_curve.png"):
        assert (out / artifact).is_file(), artifact
    assert json.loads((out / "eval.json").read_text())["student"] == result["student"]
    assert result["student"]["tokens"] == 1024 and result["tokens_scored"] == 256
    assert math.isfinite(result["teacher"]["perplexity"]) and math.isfinite(result["student"]["perplexity"])
    assert result["subnetwork"]["params"] <= result["teacher"]["params"] / 2
    assert result["steps"]["search"]["evaluations"] == 4
    report = (out / "report.md").read_text()
    assert f"{result['student']['perplexity']:.2f}" in report and f"{result['teacher']['perplexity']:.2f}" in report

    again, printed = run_json(capsys, config)  # nothing changed: every step kept, the report printed
    assert "prepare: " in printed and "skipped" in printed and "nothing changed since the last run" in printed
    assert printed.count("unchanged since it finished; kept") == 6  # importance, search, extract, train, 2 evals
    assert again == json.loads((out / "eval.json").read_text())
    assert yaml.safe_load((out / "recipe.yaml").read_text())["search"]["evals"] == 4

    moved = world["root"] / "full-moved"  # a folder moved (here copied) elsewhere is the same run there
    shutil.copytree(out, moved)
    there, printed = run_json(capsys, recipe(world, "full-moved", importance={"tokens": 512, "seq_len": 16}))
    assert "skipped" in printed and printed.count("unchanged since it finished; kept") == 6
    assert "nothing changed since the last run" not in printed  # its report made again, with the new paths
    assert there["out"] == str(moved) and there["student"]["perplexity"] == result["student"]["perplexity"]
    assert there["student"]["model"] == str(moved / "train" / "final")
    assert there["steps"]["train"]["final"] == str(moved / "train" / "final")
    assert str(out) + "/" not in (moved / "eval.json").read_text()
    assert "nothing changed since the last run" in run_json(capsys, moved.with_suffix(".yaml"))[1]

    for record in (out / "steps").glob("*.json"):  # as if finished by a version that kept no records: resumed
        record.unlink()
    again, printed = run_json(capsys, config)
    assert again["steps"]["search"]["replayed"] == 4
    assert again["steps"]["train"]["resumed_at"] == again["steps"]["train"]["steps"]
    assert again["student"]["perplexity"] == pytest.approx(result["student"]["perplexity"])


def test_a_changed_field_reruns_exactly_the_steps_it_affects_and_says_why(world, capsys):
    config = recipe(world, "changed", search__evals=2)
    first, _ = run_json(capsys, config)
    assert main(["run", "--config", str(config), "--eval.batch-size", "2", "--json"]) == 0
    printed = capsys.readouterr().out
    assert "search: unchanged since it finished; kept" in printed and "train: unchanged" in printed
    assert printed.count("eval ... (rerunning: changed batch_size 8 -> 2)") == 2
    assert main(["run", "--config", str(config), "--eval.batch-size", "2", "--train.lr", "1e-3", "--json"]) == 0
    printed = capsys.readouterr().out
    assert "search: unchanged" in printed and "extract: unchanged" in printed
    assert "train ... (rerunning: changed lr 0.0006 -> 0.001; the run it replaces moved to" in printed
    assert (world["root"] / "changed" / "superseded" / "train" / "final" / "config.json").is_file()
    assert "eval: unchanged since it finished; kept" in printed  # the teacher's
    assert "made again by this run" in printed  # the student's eval: its model was retrained
    again = json.loads(printed.strip().splitlines()[-1])
    assert again["subnetwork"] == first["subnetwork"]  # kept (the teacher's eval too: batch size 2 both times)
    assert again["teacher"]["perplexity"] == pytest.approx(first["teacher"]["perplexity"])
    assert again["student"]["perplexity"] != first["student"]["perplexity"]


def test_dotted_flags_override_any_field_and_a_misspelled_one_names_the_closest(world, capsys):
    config = recipe(world, "dotted")
    assert main(["run", "--config", str(config), "--train.lr", "1e-3", "--search.evals", "64", "--print-config"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert (resolved["train"]["lr"], resolved["search"]["evals"]) == (1e-3, 64)
    assert main(["run", "--config", str(config), "--train.lrr", "1e-3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'lrr' is not a setting of TrainConfig — did you mean lr?" in err, err
    assert not (world["root"] / "dotted").exists()


def test_an_eval_section_with_tasks_reports_teacher_and_student_accuracy(world, capsys, evalsets):
    result, _ = run_json(capsys, recipe(world, "tasks", search__evals=2, eval__tasks=["piqa", "copa"],
                                        eval__limit=3))
    assert set(result["tasks"]) == {"piqa", "copa"}
    assert result["tasks"]["piqa"]["teacher"]["items"] == result["tasks"]["piqa"]["student"]["items"] == 3
    report = (world["root"] / "tasks" / "report.md").read_text()
    assert "| piqa | 3 | 0.500 |" in report and "| copa | 3 | 0.500 |" in report


@pytest.mark.parametrize(("changes", "expected"), [
    ({"shuffle": {}}, "unknown keys shuffle"),
    ({"search__out": "elsewhere"}, "search.out is set by the pipeline"),
    ({"search__wings": 2}, "search: 'wings' is not a setting of SearchConfig"),
    ({"train__shedule": "wsd"}, "'shedule' is not a setting of TrainConfig — did you mean schedule?"),
    ({"baselines": {"random": {"lrr": [1e-3]}}}, "'lrr' is not a setting of TrainConfig — did you mean lr?"),
    ({"train__lr": "fast"}, "train: lr 'fast' is not a valid float"),
    ({"search__strategy": "annealing"}, "search: strategy 'annealing' is unknown"),
    ({"search__space": "tiny"}, "search: space 'tiny' is unknown"),
    ({"search": {"evals": 2}}, "gives the search no budget"),
    ({"search__space": "layers", "search__budget": "60%"}, "narrower than this space's width steps (the nearest"),
    ({"teacher": None}, "names no teacher"),
    ({"teacher": 5}, "teacher is not one folder or name — give one teacher as text"),  # a number in YAML
    ({"data": ["a", "b"]}, "data is not one folder or name"),
    ({"prepare": None}, "has no data"),
    ({"train__push_to_hub": "bad id!"}, "is not a hub repo id"),
    ({"extract__push_to_hub": "bad id!"}, "is not a hub repo id"),
    ({"stop_at_reference": True}, "stop_at_reference needs true or false, and a `random` baseline"),
    ({"variants": {"random": {}}}, "variant name 'random' is taken"),
])  # fmt: skip
def test_a_bad_recipe_is_one_line_and_writes_nothing(world, capsys, changes, expected):
    config = recipe(world, "bad", **changes)
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert not (world["root"] / "bad").exists()


def test_the_student_is_pushed_once_evaluated_and_no_arm_is_pushed(world, capsys, monkeypatch):
    pushes = []

    def push(folder, repo):  # what the hub would get: the folder's card at the time of the push
        pushes.append((Path(folder), repo, (Path(folder) / "README.md").read_text()))
        return f"https://hub/{repo}/commit/{len(pushes)}"

    monkeypatch.setattr("headstart.model.hub.push_to_hub", push)
    config = recipe(world, "push", search__evals=2, train__push_to_hub="me/student", baselines={"random": {}})
    result, printed = run_json(capsys, config)
    out = world["root"] / "push"
    assert [(folder, repo) for folder, repo, _ in pushes] == [(out / "train" / "final", "me/student")]
    assert f"{result['student']['perplexity']:.2f}" in pushes[0][2]  # the card held its evaluation
    assert result["push"]["url"] == "https://hub/me/student/commit/1"
    _, printed = run_json(capsys, config)
    assert len(pushes) == 1 and "is on me/student as evaluated; kept" in printed
    assert main(["run", "--config", str(config), "--train.push-to-hub", "me/other", "--json"]) == 0
    printed = capsys.readouterr().out
    assert "train: unchanged since it finished; kept" in printed and pushes[-1][1] == "me/other"


def test_a_teacher_replaced_in_its_folder_is_refused_up_front_and_its_new_tokenizer_prepares_again(world, capsys):
    teacher = make_model(world["root"] / "replaced", world["root"] / "tokenizer", "teacher", seed=1)
    config = recipe(world, "replaced-run", teacher=str(teacher), search__evals=2)
    run_json(capsys, config)
    out = world["root"] / "replaced-run"
    manifest = (out / "data" / "manifest.json").read_text()
    other = word_tokenizer(world["root"] / "other_tok", 40)  # as many words, other spellings
    (other / "tokenizer.json").write_text((other / "tokenizer.json").read_text().replace('"w1"', '"x1"'))
    make_model(teacher, other, "teacher", seed=2)
    capsys.readouterr()
    assert main(["run", "--config", str(config)]) == 2
    printed, err = capsys.readouterr()
    assert "holds a run of another teacher" in err and len(err.strip().splitlines()) == 1
    assert "prepare" not in printed and (out / "data" / "manifest.json").read_text() == manifest

    for step in ("search", "train"):  # as if killed before its search: the old tokenizer's data is redone
        shutil.rmtree(out / step)
    _, printed = run_json(capsys, config)
    assert "skipped" not in printed and "prepare ..." in printed
    fingerprint = json.loads((out / "data" / "manifest.json").read_text())["tokenizer"]["fingerprint"]
    assert fingerprint == tokenizer_fingerprint(load_tokenizer(str(other)))


def test_under_torchrun_two_ranks_give_the_same_pipeline(world, capsys):
    single, _ = run_json(capsys, recipe(world, "one-rank", search__evals=2))
    done = run_cli(["run", "--config", str(recipe(world, "two-ranks", search__evals=2)), "--json"], ranks=2,
                   timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # one summary, rank 0's
    double = json.loads(lines[0])
    assert double["subnetwork"] == single["subnetwork"]
    assert double["student"]["perplexity"] == pytest.approx(single["student"]["perplexity"], rel=1e-4)


def test_baseline_arms_train_like_the_student_and_the_report_races_them(world, capsys):
    config = recipe(world, "arms", search__evals=3, train__eval_log_spaced=True, importance={"tokens": 256})
    raw = yaml.safe_load(config.read_text())
    raw["baselines"] = {"random": {"lr": [0.001, 0.01]}, "subnet_ce": {},
                        "random_kd": {"lr": [0.001, 0.01], "sweep_tokens": 512}, "firstk_kd": {},
                        "random_search_kd": {}}
    raw["variants"] = {"kd_first_half": {"kd_until": 0.5}}
    config.write_text(yaml.safe_dump(raw))
    result, printed = run_json(capsys, config)
    out = world["root"] / "arms"
    comparison = result["comparison"]
    arms = comparison["arms"]
    assert list(arms) == ["random", "random_kd", "subnet_ce", "student", "firstk_kd", "random_search_kd",
                          "kd_first_half"]
    # the sweep: both rates trained, the better final perplexity kept, and that is the target
    sweep = arms["random"]["sweep"]
    assert set(sweep) == {"0.001", "0.01"} and arms["random"]["lr"] == min(sweep, key=sweep.get)
    assert comparison["target_perplexity"] == pytest.approx(min(sweep.values()))
    for lr in ("0.001", "0.01"):
        assert (out / "baselines" / "random" / f"train-lr{lr}" / "final" / "config.json").is_file()
    # a sweep at a shorter budget: both rates at 512 tokens, then only the better one at the full budget
    kd_sweep = arms["random_kd"]["sweep"]
    assert set(kd_sweep) == {"0.001", "0.01"} and arms["random_kd"]["lr"] == min(kd_sweep, key=kd_sweep.get)
    for lr in ("0.001", "0.01"):
        assert result["steps"][f"random_kd:sweep lr={lr}"]["tokens"] == 512
    assert result["steps"]["random_kd:train"]["tokens"] == 1024
    assert "swept at 512 tokens" in (out / "report.md").read_text()
    # same token budget and validation windows; step 0 and the log-spaced points on every curve
    # 1024 tokens at 4 x 16 per step: 16 steps, validated at 0, 1, 2 (log-spaced below eval_every 4), 4, 8, 12, 16
    assert [p[0] for p in arms["student"]["curve"]] == [0, 64, 128, 256, 512, 768, 1024]
    for name, row in arms.items():
        assert row["tokens"] == 1024, name
        assert row["curve"][0][0] == 0 and row["curve"][0][1] == 0.0, name
        assert len(row["curve"]) == len(arms["student"]["curve"]), name
    # the same untrained model: the student and subnet_ce share their step-0 point; random arms don't
    assert arms["subnet_ce"]["curve"][0] == arms["student"]["curve"][0]
    assert result["subnetwork"]["perplexity_untrained"] == arms["student"]["curve"][0][2]
    # KD arms pay for the teacher: more FLOPs per token than CE arms of the same architecture
    assert arms["random_kd"]["flops"] > arms["random"]["flops"]
    # KD for the first half of the steps: the teacher ran for half the tokens, and the curves part after it
    half = result["steps"]["kd_first_half:train"]
    assert half["teacher_flops"] == pytest.approx(result["steps"]["train"]["teacher_flops"] / 2)
    assert arms["kd_first_half"]["curve"][:5] == arms["student"]["curve"][:5]  # up to step 8 of 16
    assert arms["kd_first_half"]["curve"][-1] != arms["student"]["curve"][-1]
    cards = {name: read_card_facts(Path(result["steps"][name]["final"]))["training"]
             for name in ("kd_first_half:train", "train")}  # each model card says how much it was distilled
    assert "0.5 of the steps" in cards["kd_first_half:train"]["kd_until"] and "kd_until" not in cards["train"]
    # firstk_kd made one evaluation, random_search_kd as many as the search
    assert result["steps"]["firstk_kd:search"]["evaluations"] == 1
    assert result["steps"]["random_search_kd:search"]["evaluations"] == 3
    ref = arms["random"]["to_reference"]  # the reference reaches its own final perplexity by its last point
    assert ref["tokens"] <= 1024
    report = (out / "report.md").read_text()
    assert "## The head start" in report and "learning rate swept" in report
    for figure in ("comparison_tokens.png", "comparison_flops.png"):
        assert (out / figure).is_file()
    assert "the head start, on the same" in printed
    assert json.loads((out / "eval.json").read_text())["comparison"]["target_perplexity"] == pytest.approx(
        comparison["target_perplexity"])
    assert all(math.isfinite(row["perplexity"]) for row in arms.values())
    # raced to the teacher's perplexity too exactly where from scratch ended below it
    to_teacher = result["comparison_to_teacher"]
    assert (to_teacher is not None) == (comparison["target_perplexity"] < result["teacher"]["perplexity"])


def test_eval_windows_are_training_validation_windows(world, capsys):
    config = recipe(world, "bad-windows", eval={"tokens": 512})
    assert main(["run", "--config", str(config)]) == 2
    assert "eval.tokens is set by the pipeline" in capsys.readouterr().err


def test_with_stop_at_reference_every_arm_races_the_from_scratch_arm_and_stops_when_it_gets_there(world, capsys):
    config = recipe(world, "race", search__evals=2)
    raw = yaml.safe_load(config.read_text())
    raw["baselines"] = {"random": {"lr": [1e-4]}, "subnet_ce": {}}  # a slow from-scratch arm: the others pass it
    raw["stop_at_reference"] = True
    config.write_text(yaml.safe_dump(raw))
    names = [step.name for step in plan(load_pipeline(config))]
    assert names.index("random:train") < names.index("train") < names.index("subnet_ce:train")
    result, printed = run_json(capsys, config)
    arms, target = result["comparison"]["arms"], result["comparison"]["target_perplexity"]
    assert "stops at perplexity" in printed
    stopped = result["steps"]["train"]["stopped_at"]
    assert f"in {stopped} of {result['steps']['train']['steps']} steps (stopped below its target)" in printed
    for name in ("student", "subnet_ce"):
        summary = result["steps"]["train" if name == "student" else "subnet_ce:train"]
        assert summary["stopped_at"] is not None and summary["stopped_at"] < summary["steps"], name
        assert arms[name]["stopped"] and arms[name]["perplexity"] <= target < arms[name]["curve"][-2][2], name
    assert result["steps"]["random:train"]["stopped_at"] is None
    assert "(stopped)" in (world["root"] / "race" / "report.md").read_text()
    again, printed = run_json(capsys, config)  # a stopped run stays stopped: nothing more is trained
    assert "nothing changed" in printed and again["steps"]["train"] == result["steps"]["train"]
    assert again["comparison"]["arms"]["student"]["curve"] == arms["student"]["curve"]


def test_a_run_whose_sweep_or_race_target_reruns_reruns_too(tmp_path):
    """The rate picked from a sweep and the race's target are read from earlier runs: when one of those reruns,
    the runs they decide rerun as well, and the others are kept."""
    import dataclasses

    from headstart.pipeline import _decide, _record_file

    recipe = load_pipeline({"out": str(tmp_path / "run"), "teacher": "t", "data": str(tmp_path / "data"),
                            "search": {"budget": "50%"}, "train": {"tokens": 1024, "kd": "forward_kl"},
                            "baselines": {"random": {"lr": [1e-3, 2e-3], "sweep_tokens": 512}, "subnet_ce": {}},
                            "stop_at_reference": True})
    steps = plan(recipe)
    for step in steps:  # every step finished once
        Path(step.config.out if hasattr(step.config, "out") else tmp_path).mkdir(parents=True, exist_ok=True)
        record = _record_file(recipe, step)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"config": dataclasses.asdict(step.config), "result": {}}))
    assert all(kept is not None for kept, _ in _decide(recipe, steps).values())
    sweep = next(s for s in steps if s.name == "random:sweep lr=0.001")
    _record_file(recipe, sweep).unlink()
    rerun = {name for name, (kept, _) in _decide(recipe, steps).items() if kept is None}
    assert rerun == {"random:sweep lr=0.001", "random:train", "train", "subnet_ce:train", "eval:student"}


def test_the_student_distils_with_forward_kl_unless_the_recipe_names_another_loss_or_none(world):
    def student_kd(**changes) -> str | None:
        return load_pipeline(recipe(world, "kd-default", **changes)).train.kd

    assert student_kd(train__kd="reverse_kl") == "reverse_kl"
    assert student_kd(train={"tokens": 1024}) == "forward_kl"  # the best loss of the study's kd-losses
    assert student_kd(train={"tokens": 1024, "kd": None}) is None  # cross-entropy alone, as asked


def test_importance_seeds_the_search_unless_the_recipe_says_importance_false(world):
    seeded = load_pipeline(recipe(world, "seeded"))
    steps = {step.name: step for step in plan(seeded)}
    assert steps["search"].config.importance == str(world["root"] / "seeded" / "importance" / "importance.json")
    assert "importance" in steps
    unseeded = load_pipeline(recipe(world, "unseeded", importance=False))
    steps = {step.name: step for step in plan(unseeded)}
    assert "importance" not in steps and steps["search"].config.importance is None
    assert unseeded.to_dict()["importance"] is False and load_pipeline(unseeded.to_dict()) == unseeded
