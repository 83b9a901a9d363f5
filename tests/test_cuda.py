"""What only a CUDA GPU can check (bench/gpu.sh runs this file there; elsewhere it is skipped): bf16 and
compiled training follow fp32 and eager, AdamW is the fused kernel, checkpoints of GPU state resume,
bf16 search perplexities stay within 1% of fp32, and, where liger-kernel is installed, its fused linear + KD
loss (--kd-kernel liger) gives the chunked loss's sums and gradients and training curve."""

import contextlib
import importlib.util
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
from headstart.train.fused_kd import LIGER_BETA, liger_losses
from headstart.train.inputs import load_inputs
from headstart.train.loop import build_run
from headstart.train.losses import TeacherHidden, chunked_losses, parse_kd_loss

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
SEQ, BATCH, STEPS = 32, 8, 8
needs_liger = pytest.mark.skipif(importlib.util.find_spec("liger_kernel") is None,
                                 reason="liger-kernel is not installed (bench/gpu.sh: its wheel in WHEELS=DIR)")


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


@contextlib.contextmanager
def exact_fp32():
    """No TF32 (the training tests above turn it on for the process): fp32 parity means fp32 matmuls."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def loss_and_gradients(losses, kd, precision: str, **options) -> tuple[list[float], torch.Tensor, torch.Tensor]:
    """A KD loss's sums and its gradients of the student's hidden states and head, as a training step makes them:
    bf16 is autocast with bf16 activations, an fp32 head and a bf16 teacher. 200 tokens in chunks of 64."""
    g = torch.Generator(device="cuda").manual_seed(0)
    low = torch.bfloat16 if precision == "bf16" else torch.float32
    hidden = torch.randn(200, 64, device="cuda", generator=g).to(low).requires_grad_()
    head = (torch.randn(2048, 64, device="cuda", generator=g) / 8).requires_grad_()
    teacher = TeacherHidden(torch.randn(200, 96, device="cuda", generator=g).to(low),
                            (torch.randn(2048, 96, device="cuda", generator=g) / 8).to(low))
    targets = torch.randint(2048, (200,), device="cuda", generator=g)
    with exact_fp32(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
        sums = losses(hidden, head, targets, kd, teacher, 64, **options)
    (sums.objective / sums.tokens).backward()
    return [sums.objective.item(), sums.ce.item(), sums.kd.item()], hidden.grad.float(), head.grad.float()


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


# fp32: the same arithmetic in another order; bf16: both round the logits' matmul to bf16, at different places
TOLERANCE = {"fp32": (1e-5, 1e-4), "bf16": (1e-2, 2e-2)}  # (sums, gradients): relative


@needs_liger
@pytest.mark.parametrize("precision", list(TOLERANCE))
@pytest.mark.parametrize("name", list(LIGER_BETA))
@pytest.mark.parametrize("temperature,weight", [(1.0, 0.7), (2.0, 0.5)])
def test_liger_gives_the_chunked_losses_and_gradients(name, temperature, weight, precision):
    kd = parse_kd_loss(name, temperature, weight, 0)
    ours, our_hidden, our_head = loss_and_gradients(chunked_losses, kd, precision)
    # eager here (a compile per case would not fit bench/gpu.sh's minutes); compiled below and in training
    liger, liger_hidden, liger_head = loss_and_gradients(liger_losses, kd, precision, compiled=False)
    sums, gradients = TOLERANCE[precision]
    assert liger == pytest.approx(ours, rel=sums)
    assert relative_error(liger_hidden, our_hidden) < gradients
    assert relative_error(liger_head, our_head) < gradients


@needs_liger
@pytest.mark.parametrize("precision", list(TOLERANCE))
def test_compiled_liger_gives_the_chunked_losses_and_gradients(precision):
    kd = parse_kd_loss("js", 2.0, 0.5, 0)
    ours, our_hidden, our_head = loss_and_gradients(chunked_losses, kd, precision)
    liger, liger_hidden, liger_head = loss_and_gradients(liger_losses, kd, precision)  # compiled, as in training
    sums, gradients = TOLERANCE[precision]
    assert liger == pytest.approx(ours, rel=sums)
    assert relative_error(liger_hidden, our_hidden) < gradients
    assert relative_error(liger_head, our_head) < gradients


@needs_liger
def test_training_with_the_liger_kernel_follows_the_chunked_loss(world):
    if not (world["root"] / "bf16").is_dir():
        train(config(world, "bf16"))
    train(config(world, "liger", kd_kernel="liger"))
    assert losses(world, "liger") == pytest.approx(losses(world, "bf16"), rel=1e-2)
