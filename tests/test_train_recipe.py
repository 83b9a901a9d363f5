"""TrainConfig from a YAML/JSON recipe and flags: every field is a flag, flags win, bad values are UsageErrors."""

import argparse
import json

import pytest

from headstart.cli.main import build_parser
from headstart.errors import UsageError
from headstart.settings import field_types, given, make, parse_count, read_recipe
from headstart.train.config import TrainConfig

REQUIRED = {"student": "s", "data": "d", "out": "o", "tokens": 1000}


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser(["train", *argv]).parse_args(["train", *argv])


def test_every_field_is_a_flag_and_unset_flags_leave_the_recipe_alone():
    parser = build_parser(["train"])
    train = parser.commands[0]
    assert set(field_types(TrainConfig)) <= {a.dest for a in train._actions}
    assert given(parse([]), TrainConfig) == {}


def test_flags_override_the_recipe_and_the_recipe_overrides_the_defaults(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("student: s\ndata: d\nout: o\ntokens: 2M\nlr: 0.001\nschedule: wsd\nrandom_init: true\n")
    args = parse(["--lr", "0.002", "--no-random-init", "--micro-batch-size", "2"])
    cfg = make(TrainConfig, read_recipe(TrainConfig, recipe) | given(args, TrainConfig))
    assert (cfg.tokens, cfg.lr, cfg.schedule, cfg.random_init, cfg.micro_batch_size) == (2_000_000, 0.002, "wsd",
                                                                                         False, 2)
    assert cfg.seq_len == TrainConfig().seq_len


def test_a_json_recipe_of_a_finished_run_is_a_recipe_again(tmp_path):
    cfg = make(TrainConfig, REQUIRED | {"teacher": "t", "kd": "topk_js", "kd_top_k": 16})
    path = tmp_path / "train_config.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert make(TrainConfig, read_recipe(TrainConfig, path)) == cfg


@pytest.mark.parametrize("text,value", [("20M", 20_000_000), ("1e6", 1_000_000), (" 3k ", 3000), ("7", 7), (5, 5)])
def test_counts_take_suffixes_and_scientific_notation(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("fields", [
    {},  # student, data, out, tokens missing
    REQUIRED | {"kd": "forward_kl"},  # KD without a teacher
    REQUIRED | {"teacher": "t"},  # a teacher without a loss
    REQUIRED | {"teacher": "t", "kd": "kl_div"},  # unknown loss
    REQUIRED | {"teacher": "t", "kd": "forward_kl", "logit_cache": "c"},  # a cache needs a top-k loss
    REQUIRED | {"schedule": "linear"},
    REQUIRED | {"seq_len": "long"},
    REQUIRED | {"tokens": "1.5"},
    REQUIRED | {"micro_batch_size": 0},
])
def test_bad_settings_are_usage_errors(fields):
    with pytest.raises(UsageError):
        make(TrainConfig, fields)


def test_unknown_recipe_fields_are_usage_errors_not_silently_dropped(tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps(REQUIRED | {"learning_rate": 0.1}))
    with pytest.raises(UsageError, match="'learning_rate' is not a setting of TrainConfig"):
        read_recipe(TrainConfig, recipe)


def test_a_misspelled_flag_or_recipe_key_names_the_closest_valid_one(tmp_path, capsys):
    from headstart.cli.main import main

    assert main(["train", "--micro-bach-size", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean --micro-batch-size?" in err, err
    recipe = tmp_path / "r.yaml"
    recipe.write_text("student: s\nshedule: wsd\n")
    assert main(["train", "--config", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'shedule' is not a setting of TrainConfig — did you mean schedule?" in err, err


@pytest.mark.parametrize(("name", "text"), [("r.yaml", "student: s\ntrain:\n  lr: 1\nlr: 1e-3\nlr: 2e-3\n"),
                                           ("r.json", '{"student": "s", "lr": 1e-3, "lr": 2e-3}')])
def test_a_key_written_twice_in_a_recipe_is_refused_not_read_as_the_last(name, text, tmp_path, capsys):
    from headstart.cli.main import main

    (tmp_path / name).write_text(text)
    assert main(["train", "--config", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sets 'lr' twice in one mapping — keep one of them" in err, err


def test_print_config_writes_the_resolved_recipe_that_reads_back_the_same(tmp_path, capsys):
    from headstart.cli.main import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text("student: s\ndata: d\nout: o\ntokens: 2M\nlr: 0.001\n")
    assert main(["train", "--config", str(recipe), "--lr", "3e-3", "--print-config"]) == 0
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(capsys.readouterr().out)
    cfg = make(TrainConfig, read_recipe(TrainConfig, resolved))
    assert (cfg.tokens, cfg.lr) == (2_000_000, 0.003)
    assert cfg == make(TrainConfig, read_recipe(TrainConfig, recipe) | {"lr": 3e-3})
