"""The CLI made from the configs: the same flags wherever a model runs, any recipe key as a dotted flag under
`headstart run` (the baselines too), `assets` from its config, and a rerun that keeps a step recorded before a
field was added."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml

from headstart.cli.main import build_parser, main
from headstart.errors import UsageError
from headstart.pipeline import _decide, _record_file, load_pipeline, plan
from headstart.settings import fields_of_words

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def test_version_is_the_installed_packages(capsys):
    from importlib.metadata import version

    import headstart

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"headstart {headstart.__version__}\n"
    assert version("headstart") == headstart.__version__


@pytest.mark.parametrize("command", ["importance", "search", "eval", "train"])
def test_every_command_that_runs_a_model_takes_device_and_precision(command):
    options = {o for a in build_parser([command]).commands[0]._actions for o in a.option_strings}
    assert {"--device", "--precision"} <= options
    args = build_parser([command]).parse_args([command, "--device", "cpu", "--precision", "fp32"])
    assert (args.device, args.precision) == ("cpu", "fp32")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_train_on_a_cuda_device_without_one_is_one_line(tmp_path, capsys):
    from train_support import make_world

    world = make_world(tmp_path)
    capsys.readouterr()
    assert main(["train", "--student", str(world["student"]), "--data", str(world["data"]), "--tokens", "64",
                 "--seq-len", "16", "--out", str(tmp_path / "run"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no GPU is visible" in err, err
    assert not (tmp_path / "run").exists()


def test_dotted_words_are_recipe_keys():
    assert fields_of_words(["--out=runs/x", "--train.lr", "1e-3", "--prepare.input", "a", "b", "--train.compile",
                             "--train.no-eval-log-spaced", "--variants.kd-half.kd-until", "0.5"]) == {
        "out": "runs/x", "train.lr": "1e-3", "prepare.input": ["a", "b"], "train.compile": True,
        "train.eval_log_spaced": False, "variants.kd-half.kd_until": "0.5"}
    with pytest.raises(UsageError, match="unrecognized arguments: stray"):
        fields_of_words(["stray", "--out", "x"])


def test_a_dotted_flag_reaches_the_baselines_and_the_resolved_recipe_plans_it(capsys):
    demo = str(RECIPES / "demo.yaml")
    assert main(["run", "--config", demo, "--baselines.random.lr", "0.004", "--baselines.random.eval-every", "5",
                 "--baselines.random_kd.lr", "0.003", "--print-config"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["baselines"]["random"] == {"eval_every": 5, "lr": [0.004]}
    assert resolved["baselines"]["random_kd"] == {"lr": [0.003]}
    assert resolved["baselines"]["subnet_ce"] == {"lr": [0.002]}  # the recipe's, untouched
    steps = {s.name: s.config for s in plan(load_pipeline(resolved))}
    assert (steps["random:train"].lr, steps["random:train"].eval_every, steps["random:train"].random_init) == (
        0.004, 5, True)
    assert steps["random_kd:train"].kd == "forward_kl"


@pytest.mark.parametrize(("flags", "expected"), [
    (["--baselines.random.lrr", "1e-3"], "'lrr' is not a setting of TrainConfig — did you mean lr?"),
    (["--baselines.randm.lr", "1e-3"], "baseline 'randm' is unknown — did you mean random?"),
    (["--baselines.random.lr", "fast"], "baselines.random: lr 'fast' is not a valid float"),
    (["--baselines.random.kd", "js"], "baselines.random.kd is set by the pipeline or the arm itself"),
    (["--train.lrr", "1e-3"], "'lrr' is not a setting of TrainConfig — did you mean lr?"),
    (["--shuffle", "1"], "unknown keys shuffle"),
    (["stray"], "out is not one folder or name"),
    (["--train.lr"], "lr was given no value"),  # not a switch: it would have read as lr 1.0
    (["--train.lr", "nan"], "--lr must be in (0, inf), got nan"),  # the optimizer's checks come hours later
    (["--train.beta1", "1"], "--beta1 must be in [0, 1), got 1.0"),
    (["--train.grad-clip", "-1"], "--grad-clip must be at least 0, got -1.0"),
    (["--train.kd-until", "0"], "--kd-until must be in (0, 1], got 0.0"),
    (["--train.kd-weight", "2"], "--kd-weight must be in [0, 1], got 2.0"),  # -CE: nonsense with or without KD
    (["--search.crossover-prob", "1.5"], "--crossover-prob must be in [0, 1], got 1.5"),
    (["--prepare.input", "nosuch.txt"], "input nosuch.txt does not exist"),  # before anything is written
    (["--search.evals", "-3", "--print-config"], "--evals must be at least 1"),  # printed only once checked
])  # fmt: skip
def test_a_bad_dotted_flag_is_one_line(flags, expected, tmp_path, capsys):
    assert main(["run", "--config", str(RECIPES / "demo.yaml"), "--out", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "run").exists()


def test_run_and_extract_refuse_a_users_folder_and_the_current_one(tmp_path, capsys, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("mine")
    assert main(["run", "--config", str(RECIPES / "demo.yaml"), "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a `headstart run` folder" in err, err
    assert [p.name for p in mine.iterdir()] == ["thesis.txt"]
    monkeypatch.chdir(mine)
    assert main(["extract", "--teacher", "scale-teacher", "--spec", '{"layers": 2}', "--out", ".", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the current folder or holds it" in err, err
    assert [p.name for p in mine.iterdir()] == ["thesis.txt"]


@pytest.mark.parametrize(("argv", "expected"), [
    (["eval", "--model", "scale-teacher", "--tasks", "piqa", "--limit", "-1"], "--limit must be at least 0, got -1"),
    (["init", "--architecture", "{cfg}", "--tokenizer", "scale-teacher", "--out", "{out}"], "config.json lacks 'num_"),
    (["train", "--student", "s", "--data", "d", "--tokens", "1K", "--out", "{out}", "--lr", "inf"],
     "--lr must be in (0, inf), got inf"),
    (["space", "--teacher", "scale-teacher", "--space", "layers", "--samples", "-1"], "--samples must be at least 1"),
])  # fmt: skip
def test_values_that_once_ended_in_a_traceback_are_one_line(argv, expected, tmp_path, capsys):
    cfg = tmp_path / "config.json"  # a config.json without the head count its family needs
    cfg.write_text(json.dumps({"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": 64}))
    assert main([a.format(cfg=cfg, out=tmp_path / "out") for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists()


def test_assets_flags_come_from_its_config(capsys):
    assert main(["assets", "--only", "corpus", "tokenizers", "--extras", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == {"only": ["corpus", "tokenizers"], "extras": True,
                                                       "cache": None}
    assert main(["assets", "--only", "corpuss"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--only 'corpuss' is unknown — did you mean corpus?" in err, err


def test_a_step_recorded_before_a_field_was_added_is_kept(tmp_path):
    recipe = load_pipeline(RECIPES / "demo.yaml", {"out": str(tmp_path), "data": str(tmp_path / "d"),
                                                   "prepare": None})
    steps = plan(recipe)
    for step in steps:
        config = dataclasses.asdict(step.config)
        if step.command == "train":
            del config["device"]  # a record written before train had --device
        record = _record_file(recipe, step)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"config": config, "result": {}}))
        Path(step.config.out if hasattr(step.config, "out") else tmp_path).mkdir(parents=True, exist_ok=True)
    decisions = _decide(recipe, steps)
    assert {why for _, why in decisions.values()} == {"unchanged since it finished; kept"}
    train = next(step for step in steps if step.name == "train")
    changed = dataclasses.replace(train, config=dataclasses.replace(train.config, device="cpu"))
    assert _decide(recipe, [changed])["train"][1].startswith("rerunning: changed device 'auto' -> 'cpu';")


def test_a_config_is_made_again_from_its_command_line_in_any_word_order():
    from headstart.configs import PrepareConfig
    from headstart.settings import from_command_line, make

    cfg = make(PrepareConfig, {"input": ["a.txt", "b/"], "out": "data", "tokenizer": "gpt2", "val_docs": ["x*.txt"],
                               "max_tokens": "2M", "workers": 3})
    assert "--workers" not in cfg.command_line()  # not part of what the data is
    assert from_command_line(PrepareConfig, cfg.command_line()) == dataclasses.replace(cfg, workers=None)
    # an earlier version's manifest line: another word order, the defaults spelled out
    earlier = ("headstart prepare --tokenizer gpt2 --input a.txt b/ --out data --text-field text --seed 0 "
               "--val-docs 'x*.txt' --max-tokens 2000000")
    assert from_command_line(PrepareConfig, earlier) == dataclasses.replace(cfg, workers=None)
    with pytest.raises(UsageError, match="'colour' is not a setting of PrepareConfig"):
        from_command_line(PrepareConfig, "headstart prepare --input a.txt --out data --colour blue")
