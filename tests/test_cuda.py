"""What only a CUDA GPU can check (bench/gpu.sh runs this file there; elsewhere it is skipped): bf16 and
compiled training follow fp32 and eager, AdamW is the fused kernel, checkpoints of GPU state resume, and
bf16 search perplexities stay within 1% of fp32."""

import shutil

import pytest
import torch
from train_support import kd_config, make_world, one_thread, prose_windows, train_records  # noqa: F401 (one_thread: autouse)

from headstart.model import load_model
from headstart.model.registry import SHIPPED_DIR
from headstart.search.objective import PerplexityObjective
from headstart.subnet.spec import full_spec
from headstart.train import train
from headstart.train.distributed import init_ranks
from headstart.train.inputs import load_inputs
from headstart.train.loop import build_run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
SEQ, BATCH, STEPS = 32, 8, 8


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("cuda_world"))


def config(world, out: str, **more):
    return kd_config(world, out, STEPS, SEQ, BATCH, **more)


def losses(world, out: str) -> list[float]:
    return [r["loss"] for r in train_records(world["root"] / out)]


def test_bf16_training_follows_the_fp32_curve(world):
    assert train(config(world, "fp32", precision="fp32"))["compute"] == "fp32"
    assert train(config(world, "bf16"))["compute"] == "bf16 autocast"  # auto: bf16 on a GPU
    assert losses(world, "bf16") == pytest.approx(losses(world, "fp32"), rel=3e-2)


def test_compiled_training_follows_eager_training(world):
    if not (world["root"] / "bf16").is_dir():
        train(config(world, "bf16"))
    train(config(world, "compiled", compile=True))
    assert losses(world, "compiled") == pytest.approx(losses(world, "bf16"), rel=1e-2)


def test_adamw_is_the_fused_kernel(world):
    cfg = config(world, "fused")
    ranks = init_ranks()
    run = build_run(cfg, ranks, load_inputs(cfg, ranks))
    assert all(group["fused"] for group in run.optimizer.param_groups)
    assert next(run.student.parameters()).is_cuda


def test_asynchronous_checkpoints_of_gpu_state_resume_on_the_same_curve(world):
    out = world["root"] / "async"
    train(config(world, "async", async_checkpoints=True, activation_checkpointing=True))
    unbroken = losses(world, "async")
    shutil.rmtree(out / "checkpoints" / f"step-{STEPS:08d}")
    shutil.rmtree(out / "checkpoints" / f"step-{STEPS - 2:08d}")
    assert train(config(world, "async", async_checkpoints=True, activation_checkpointing=True),
                 resume=True)["resumed_at"] == STEPS - 4
    assert losses(world, "async") == pytest.approx(unbroken, rel=1e-3)


@pytest.mark.skipif(not (SHIPPED_DIR / "scale-teacher" / "config.json").is_file(), reason="no shipped scale teacher")
def test_bf16_search_perplexity_is_within_one_percent_of_fp32():
    teacher = load_model("scale-teacher").cuda()
    windows = prose_windows(SHIPPED_DIR / "scale-teacher" / "tokenizer.json", seq_len=64)
    spec = full_spec(teacher.config)
    fp32 = PerplexityObjective(teacher, windows, precision="fp32")(spec)["perplexity"]
    bf16 = PerplexityObjective(teacher, windows)(spec)["perplexity"]  # auto: bf16 autocast on a GPU
    assert bf16 == pytest.approx(fp32, rel=0.01) and bf16 != fp32
