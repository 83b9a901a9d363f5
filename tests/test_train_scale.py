"""What training at scale relies on, checked on CPU: asynchronous checkpoints resume like synchronous ones,
activation checkpointing recomputes the same gradients, MFU is a known device's peak or nothing, and
bf16 autocast evaluation stays within 1% of fp32 perplexity."""

import dataclasses
import shutil

import pytest
import torch
from train_support import kd_config, make_world, one_thread, prose_windows, train_records  # noqa: F401 (one_thread: autouse)

from headstart.model import load_model
from headstart.model.registry import SHIPPED_DIR
from headstart.search.objective import PerplexityObjective
from headstart.subnet.spec import full_spec
from headstart.train import throughput, train
from headstart.train.checkpoint import RUN_STATE, list_checkpoints
from headstart.train.distributed import HiddenAndHead, apply_activation_checkpointing
from headstart.train.throughput import IntervalMeter, model_flops_utilisation, peak_flops

SEQ, BATCH, STEPS = 16, 4, 6


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("scale_world"))


def config(world, out: str, **more):
    return kd_config(world, out, STEPS, SEQ, BATCH, **more)


def test_asynchronous_checkpoints_resume_to_the_curve_of_an_unbroken_run(world):
    train(config(world, "sync"))
    train(config(world, "async", async_checkpoints=True))
    out = world["root"] / "async"
    assert [p.name for p in list_checkpoints(out)] == ["step-00000002", "step-00000004", "step-00000006"]
    assert all((p / RUN_STATE).is_file() and (p / ".metadata").is_file() for p in list_checkpoints(out))
    assert not list((out / "checkpoints").glob(".*"))  # no temporary folder left behind
    shutil.rmtree(out / "checkpoints" / "step-00000006")
    summary = train(config(world, "async", async_checkpoints=True), resume=True)
    assert summary["resumed_at"] == 4
    strip = [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in train_records(out)]
    assert strip == [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in train_records(world["root"] / "sync")]


def test_activation_checkpointing_recomputes_the_same_gradients_under_the_same_names(world):
    plain, recomputed = (HiddenAndHead(load_model(world["student"])) for _ in range(2))
    apply_activation_checkpointing(recomputed.decoder)
    ids = torch.randint(0, plain.decoder.config.vocab_size, (2, SEQ))
    for module in (plain, recomputed):
        hidden, head = module(ids)
        (hidden @ head.T).logsumexp(-1).mean().backward()
    assert [n for n, _ in plain.named_parameters()] == [n for n, _ in recomputed.named_parameters()]
    for (name, a), b in zip(plain.named_parameters(), recomputed.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7, msg=name)


def test_training_logs_mfu_beside_tokens_per_s_at_each_log_step_where_the_peak_is_known(world, monkeypatch):
    monkeypatch.setattr(throughput, "peak_flops", lambda device: 1e12)  # as if this CPU were a GPU of the table
    train(config(world, "mfu", log_every=2))
    records = train_records(world["root"] / "mfu")
    assert [r["step"] for r in records] == [2, 4, 6]
    for r in records:
        flops_per_token = (r["student_flops"] + r["teacher_flops"]) / r["tokens"]
        assert r["mfu"] == pytest.approx(r["tokens_per_s"] * flops_per_token / 1e12, rel=1e-9)


@pytest.mark.parametrize(("name", "peak"), [("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12),
                                            ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-80GB", 312e12),
                                            ("Some Future GPU", None)])
def test_a_gpu_has_the_peak_of_its_name_and_an_unknown_one_none(monkeypatch, name, peak):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    assert peak_flops(torch.device("cuda", 0)) == peak


def test_mfu_is_model_flops_over_the_peak_of_every_device_and_absent_without_a_peak():
    assert peak_flops(torch.device("cpu")) is None
    assert model_flops_utilisation(3e12, 2.0, 1e12, world_size=3) == pytest.approx(0.5)
    assert model_flops_utilisation(3e12, 2.0, None) is None
    meter = IntervalMeter(torch.device("cpu"), 1)
    assert set(meter.read(100, 1e9)) == {"tokens_per_s"}



@pytest.mark.skipif(not (SHIPPED_DIR / "scale-teacher" / "config.json").is_file(), reason="no shipped scale teacher")
def test_bf16_autocast_perplexities_of_the_scale_teacher_are_within_one_percent_of_fp32():
    """The tolerance search and evaluation on GPUs rely on: a trained model, its full network and a half one."""
    teacher = load_model("scale-teacher")
    windows = prose_windows(SHIPPED_DIR / "scale-teacher" / "tokenizer.json", seq_len=64)
    full = full_spec(teacher.config)
    half = dataclasses.replace(full, layers=full.layers[: len(full.layers) // 2])
    for spec in (full, half):
        fp32, bf16 = (PerplexityObjective(teacher, windows, precision=p)(spec)["perplexity"] for p in ("fp32", "bf16"))
        assert bf16 == pytest.approx(fp32, rel=0.01)
        assert bf16 != fp32  # the bf16 path did run in bf16
