"""`headstart train` end to end on tiny models: it learns, distils, accounts, logs, exports, and refuses bad input."""

import json
import math

import pytest
import torch
import transformers
from train_support import (  # noqa: F401
    VOCAB,
    make_data,
    make_model,
    make_world,
    one_thread,
    train_argv,
    train_records,
    word_tokenizer,
)

from headstart.cli.main import main
from headstart.eval import evaluate_windows
from headstart.model import init_weights, load_model
from headstart.model.card import read_card_facts
from headstart.settings import make
from headstart.subnet.counts import flops_per_token
from headstart.train import train
from headstart.train.config import TrainConfig
from headstart.train.distributed import init_ranks
from headstart.train.inputs import load_inputs
from headstart.train.loop import build_run, train_step
from headstart.train.schedule import lr_multiplier

SEQ, BATCH = 16, 8


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("loop_world"))


def fields(world, out: str, **more) -> dict:
    return {"student": world["student"], "data": world["data"], "out": world["root"] / out, "tokens": 16 * BATCH * SEQ,
            "seq_len": SEQ, "batch_size": BATCH, "micro_batch_size": 4, "lr": 3e-3, "eval_every": 8,
            "checkpoint_every": 8, "keep_checkpoints": 1} | more


def test_a_run_learns_and_leaves_metrics_tensorboard_checkpoints_summary_and_a_hf_model(world):
    cfg = make(TrainConfig, fields(world, "ce", schedule="wsd", warmup_fraction=0.25, decay_fraction=0.25))
    before = evaluate_windows(load_model(world["student"]), load_inputs(cfg, init_ranks()).validation)
    summary = train(cfg)
    out = world["root"] / "ce"
    assert summary["val_loss"] < before.loss - 0.1
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 17))
    assert [(r["step"], round(r["val_loss"], 6)) for r in records if "val_loss" in r][-1] == (16, round(
        summary["val_loss"], 6))
    assert [r["lr"] for r in train_records(out)] == pytest.approx([3e-3 * lr_multiplier(s, 16, 4, "wsd", 0.1, 4)
                                                                   for s in range(16)])
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000016"]  # keep 1
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == list(range(1, 17))
    assert json.loads((out / "summary.json").read_text())["val_loss"] == summary["val_loss"]
    assert "CPU cores" in summary["hardware"] and summary["compute"] == "fp32"  # what its timings were taken on
    final = out / "final"
    ours = load_model(final)
    hf = transformers.AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32)
    ids = torch.randint(0, VOCAB, (2, SEQ))
    torch.testing.assert_close(hf(ids).logits, ours(ids), rtol=1e-4, atol=1e-4)
    assert (final / "tokenizer.json").is_file()
    assert summary["tokens"] == 16 * BATCH * SEQ
    card = read_card_facts(final)  # its model card says how it was trained and how it scores
    assert card["training"]["tokens"] == summary["tokens"] and card["training"]["kd_loss"].startswith("none")
    assert card["validation"]["perplexity"] == pytest.approx(summary["val_ppl"])
    assert summary["student_flops"] == pytest.approx(3 * flops_per_token(ours.config, seq_len=SEQ) * summary["tokens"])
    assert summary["teacher_flops"] == 0


def test_a_kd_run_logs_its_kd_term_and_charges_the_teacher_forward(world):
    cfg = make(TrainConfig, fields(world, "kd", teacher=world["teacher"], kd="symmetric_kl", temperature=2.0))
    summary = train(cfg)
    records = train_records(world["root"] / "kd")
    assert all(r["kd"] > 0 for r in records)
    assert records[0]["loss"] == pytest.approx(0.3 * records[0]["ce"] + 0.7 * records[0]["kd"])
    teacher = load_model(world["teacher"])
    assert summary["teacher_flops"] == pytest.approx(flops_per_token(teacher.config, seq_len=SEQ) * summary["tokens"])


def test_the_teacher_stays_frozen_in_eval_mode_while_the_student_steps(world):
    cfg = make(TrainConfig, fields(world, "frozen", teacher=world["teacher"], kd="forward_kl"))
    run = build_run(cfg, init_ranks(), load_inputs(cfg, init_ranks()))
    teacher = run.inputs.teacher
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = run.inputs.student.embed.weight.clone()
    train_step(run, 0)
    assert not teacher.training and all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not torch.equal(student_before, run.inputs.student.embed.weight)


def test_random_init_replaces_the_student_weights_by_the_seeded_initialisation(world):
    cfg = make(TrainConfig, fields(world, "scratch", random_init=True, seed=5))
    student = load_inputs(cfg, init_ranks()).student
    expected = load_model(world["student"])
    init_weights(expected, 5)
    loaded = load_model(world["student"])
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), expected.state_dict().values(),
                                                 strict=True))
    assert not torch.equal(student.blocks[0].mlp.up.weight, loaded.blocks[0].mlp.up.weight)


def test_the_initial_cross_entropy_of_a_seeded_random_student_is_near_uniform(world):
    summary_records = train(make(TrainConfig, fields(world, "uniform", random_init=True, tokens=BATCH * SEQ)))
    first = train_records(world["root"] / "uniform")[0]
    assert abs(first["ce"] - math.log(VOCAB)) < 0.1 and summary_records["steps"] == 1


def test_fsdp_in_one_process_trains_unsharded_and_says_so(world, capsys):
    summary = train(make(TrainConfig, fields(world, "fsdp-alone", parallel="fsdp", tokens=BATCH * SEQ)))
    assert summary["steps"] == 1
    assert "--parallel fsdp shards the model over ranks, and this is one process" in capsys.readouterr().err


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing written


def expect_one_line_error(capsys, argv: list[str], match: str) -> None:
    capsys.readouterr()  # what the test printed before
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("headstart train: error:"), err
    assert match in err, err


def argv(world, out: str, **more) -> list[str]:
    return train_argv(**fields(world, out, eval_every=2, checkpoint_every=2, tokens=2 * BATCH * SEQ) | more)


def test_a_teacher_with_another_tokenizer_is_refused(world, capsys):
    other_tok = word_tokenizer(world["root"] / "other_tok", 40)  # same size, other words below
    other_tok_file = other_tok / "tokenizer.json"
    other_tok_file.write_text(other_tok_file.read_text().replace('"w1"', '"x1"'))
    teacher = make_model(world["root"] / "foreign_teacher", other_tok, "teacher")
    expect_one_line_error(capsys, argv(world, "t1", teacher=teacher, kd="forward_kl"), "different tokenizers")
    assert not (world["root"] / "t1").exists()


def test_a_teacher_with_another_vocabulary_size_is_refused(world, capsys):
    teacher = make_model(world["root"] / "wide_teacher", world["root"] / "tokenizer", "teacher", vocab=VOCAB + 6)
    expect_one_line_error(capsys, argv(world, "t2", teacher=teacher, kd="forward_kl"), "vocabulary")
    assert not (world["root"] / "t2").exists()


def test_data_of_another_tokenizer_is_refused(world, capsys, tmp_path):
    data = make_data(tmp_path, n_words=30)
    expect_one_line_error(capsys, argv(world, "t3", data=data), "tokenized with")
    assert not (world["root"] / "t3").exists()


def test_an_unknown_loss_is_refused(world, capsys):
    expect_one_line_error(capsys, argv(world, "t4", teacher=world["teacher"], kd="kl"), "unknown distillation loss")
    assert not (world["root"] / "t4").exists()


def test_a_corrupt_checkpoint_is_refused_on_resume(world, capsys):
    assert main(argv(world, "t5")) == 0
    shard = next((world["root"] / "t5" / "checkpoints" / "step-00000002").glob("*.distcp"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    expect_one_line_error(capsys, [*argv(world, "t5"), "--resume"], "corrupt")


def test_an_incompatible_checkpoint_or_an_existing_run_is_refused(world, capsys):
    assert main(argv(world, "t6")) == 0
    expect_one_line_error(capsys, [*argv(world, "t6", lr=1e-3), "--resume"], "lr=0.003")
    expect_one_line_error(capsys, argv(world, "t6"), "--resume")
    other_student = make_model(world["root"] / "other_student", world["root"] / "tokenizer", "teacher")
    expect_one_line_error(capsys, [*argv(world, "t6", student=other_student), "--resume"], "architecture")


def test_a_checkpoint_distilled_from_another_teacher_is_refused(world, capsys):
    assert main(argv(world, "t8", teacher=world["teacher"], kd="forward_kl")) == 0
    retrained = make_model(world["root"] / "retrained_teacher", world["root"] / "tokenizer", "teacher", seed=2)
    expect_one_line_error(capsys, [*argv(world, "t8", teacher=retrained, kd="forward_kl"), "--resume"],
                          "another teacher")
