"""--kd-kernel: liger's fused linear + KD loss is used for KD steps only when asked for, computes what the
chunked loss computes (on this CPU, uncompiled, where liger-kernel is installed), and every combination it
cannot compute exactly, a machine without CUDA and a missing package are refused in one line."""

import importlib.util

import pytest
import torch
from train_support import one_thread  # noqa: F401 (autouse fixture)

import headstart.train.fused_kd as fused_kd
from headstart.cli.main import main
from headstart.errors import UsageError
from headstart.settings import make
from headstart.train.config import TrainConfig
from headstart.train.fused_kd import LIGER_BETA, check_liger_available, liger_losses, step_losses
from headstart.train.losses import TeacherHidden, chunked_losses, parse_kd_loss, teacher_topk

REQUIRED = {"student": "s", "data": "d", "out": "o", "tokens": 1000, "teacher": "t"}
TOKENS, EMBD, TEACHER_EMBD, VOCAB = 37, 16, 24, 300  # 37 tokens: chunks of 8 leave a ragged last one
HAVE_LIGER = importlib.util.find_spec("liger_kernel") is not None


def random_case(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(TOKENS, EMBD, generator=g), torch.randn(VOCAB, EMBD, generator=g),
            torch.randn(TOKENS, TEACHER_EMBD, generator=g), torch.randn(VOCAB, TEACHER_EMBD, generator=g),
            torch.randint(VOCAB, (TOKENS,), generator=g))


def sums_and_gradients(losses, kd, case, **options) -> tuple[list[float], torch.Tensor, torch.Tensor]:
    hidden, head, t_hidden, t_head, targets = case
    hidden, head = hidden.clone().requires_grad_(), head.clone().requires_grad_()
    sums = losses(hidden, head, targets, kd, TeacherHidden(t_hidden, t_head), 8, **options)
    (sums.objective / sums.tokens).backward()
    return [sums.objective.item(), sums.ce.item(), sums.kd.item()], hidden.grad, head.grad


@pytest.mark.skipif(not HAVE_LIGER, reason="liger-kernel is not installed (pip install --no-deps liger-kernel==0.8.5 "
                                           "runs this check on a CPU)")
@pytest.mark.parametrize("name", list(LIGER_BETA))
@pytest.mark.parametrize("temperature,weight", [(1.0, 0.7), (2.0, 0.5), (0.5, 1.0), (1.0, 0.0)])
def test_liger_computes_the_chunked_losses_and_their_gradients(name, temperature, weight):
    kd = parse_kd_loss(name, temperature, weight, 0)
    case = random_case()
    ours, our_hidden, our_head = sums_and_gradients(chunked_losses, kd, case)
    liger, liger_hidden, liger_head = sums_and_gradients(liger_losses, kd, case, compiled=False)
    assert liger == pytest.approx(ours, rel=1e-5)  # fp32: objective, CE and KD sums
    torch.testing.assert_close(liger_hidden, our_hidden, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(liger_head, our_head, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kd,words", [("symmetric_kl", "--kd symmetric_kl has no exact equivalent in liger"),
                                      ("topk_js", "computes full-vocabulary losses, not topk_js")])
def test_a_loss_liger_cannot_compute_exactly_is_refused_with_the_fix(kd, words):
    with pytest.raises(UsageError, match=words) as refused:
        make(TrainConfig, REQUIRED | {"kd": kd, "kd_kernel": "liger"})
    assert "--kd-kernel chunked" in str(refused.value)
    assert make(TrainConfig, REQUIRED | {"kd": kd}).kd_kernel == "chunked"  # the default computes every loss


def test_a_step_uses_liger_for_kd_only_when_asked():
    kd = parse_kd_loss("js", 1.0, 0.5, 0)
    assert step_losses("chunked", kd) is chunked_losses
    assert step_losses("liger", kd) is liger_losses
    assert step_losses("liger", None) is chunked_losses  # CE-only steps (no KD, or after --kd-until)
    cfg = make(TrainConfig, {k: v for k, v in REQUIRED.items() if k != "teacher"} | {"kd_kernel": "liger"})
    assert cfg.kd is None  # a CE-only run (a baseline arm) may carry the setting: it is not refused
    hidden, head, t_hidden, t_head, targets = random_case()
    with pytest.raises(ValueError, match="top-k"):
        liger_losses(hidden, head, targets, kd, teacher_topk(t_hidden, t_head, 4))


def train_with_liger(tmp_path) -> list[str]:
    return ["train", "--student", "s", "--data", "d", "--out", str(tmp_path / "run"), "--tokens", "1000",
            "--teacher", "t", "--kd", "forward_kl", "--kd-kernel", "liger"]


def test_liger_without_a_gpu_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(train_with_liger(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a CUDA GPU" in err and "use --kd-kernel chunked" in err, err
    assert not (tmp_path / "run").exists()


def test_liger_not_installed_is_one_line_exit_2_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(__import__("sys").modules, "liger_kernel.chunked_loss.jsd_loss", None)  # import fails
    assert main(train_with_liger(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs liger-kernel" in err and "pip install 'headstart[liger]'" in err, err
    assert not (tmp_path / "run").exists()
    assert not fused_kd.liger_installed()
    with pytest.raises(UsageError, match="needs liger-kernel"):
        check_liger_available()
