"""Chunked CE and KD losses: equal to a naive full-logits reference, in value and gradient, without [tokens, vocab]."""

import gc
import math
import weakref

import pytest
import torch
import torch.nn.functional as F
from train_support import one_thread  # noqa: F401 (autouse fixture)

from headstart.errors import UsageError
from headstart.train.losses import (
    DIVERGENCES,
    KD_LOSSES,
    LossSums,
    TeacherHidden,
    chunked_losses,
    parse_kd_loss,
    teacher_topk,
)

TOKENS, EMBD, VOCAB = 37, 16, 300  # 37 tokens: chunks of 8 leave a ragged last one


def naive_divergence(name: str, p_logits: torch.Tensor, q_logits: torch.Tensor, t: float) -> torch.Tensor:
    """Textbook definitions on full [tokens, vocab] tensors, through torch's own kl_div."""
    log_p, log_q = F.log_softmax(p_logits / t, -1), F.log_softmax(q_logits / t, -1)
    fwd = F.kl_div(log_q, log_p, log_target=True, reduction="sum")  # KL(p || q)
    rev = F.kl_div(log_p, log_q, log_target=True, reduction="sum")  # KL(q || p)
    if name == "forward_kl":
        return fwd * t * t
    if name == "reverse_kl":
        return rev * t * t
    if name == "symmetric_kl":
        return (fwd + rev) / 2 * t * t
    m = (log_p.exp() + log_q.exp()) / 2
    js = (F.kl_div(m.log(), log_p, log_target=True, reduction="sum")
          + F.kl_div(m.log(), log_q, log_target=True, reduction="sum")) / 2
    return js * t * t


def naive_loss(name: str, s_hidden, s_head, t_hidden, t_head, targets, t: float, w: float, k: int | None):
    s_logits, t_logits = s_hidden @ s_head.T, (t_hidden @ t_head.T).detach()
    if k is not None:  # both renormalised over the teacher's top-k tokens
        t_logits, idx = t_logits.topk(k, dim=-1)
        s_logits_k = s_logits.gather(-1, idx)
    kd = naive_divergence(name, t_logits, s_logits_k if k is not None else s_logits, t)
    ce = F.cross_entropy(s_hidden @ s_head.T, targets, reduction="sum")
    return (1 - w) * ce + w * kd


@pytest.fixture
def tensors():
    g = torch.Generator().manual_seed(0)
    s_hidden = torch.randn(TOKENS, EMBD, generator=g, requires_grad=True)
    s_head = (torch.randn(VOCAB, EMBD, generator=g) * 0.5).requires_grad_()
    t_hidden = torch.randn(TOKENS, EMBD, generator=g)
    t_head = torch.randn(VOCAB, EMBD, generator=g) * 0.5
    targets = torch.randint(0, VOCAB, (TOKENS,), generator=g)
    return s_hidden, s_head, t_hidden, t_head, targets


@pytest.mark.parametrize("name", KD_LOSSES)
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_each_kd_loss_equals_the_naive_reference_in_value_and_gradient(tensors, name, temperature):
    s_hidden, s_head, t_hidden, t_head, targets = tensors
    kd = parse_kd_loss(name, temperature, weight=0.7, top_k=20)
    teacher = teacher_topk(t_hidden, t_head, 20, chunk_tokens=8) if kd.top_k else TeacherHidden(t_hidden, t_head)
    sums = chunked_losses(s_hidden, s_head, targets, kd, teacher, chunk_tokens=8)
    ours = sums.objective
    ours_grads = torch.autograd.grad(ours, (s_hidden, s_head))
    ref = naive_loss(kd.divergence, s_hidden, s_head, t_hidden, t_head, targets, temperature, 0.7, kd.top_k)
    ref_grads = torch.autograd.grad(ref, (s_hidden, s_head))
    assert sums.tokens == TOKENS
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-4)
    for a, b in zip(ours_grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_cross_entropy_alone_equals_torch_cross_entropy(tensors):
    s_hidden, s_head, _, _, targets = tensors
    sums = chunked_losses(s_hidden, s_head, targets, chunk_tokens=5)
    torch.testing.assert_close(sums.objective, F.cross_entropy(s_hidden @ s_head.T, targets, reduction="sum"))
    assert sums.kd.item() == 0.0


@pytest.mark.parametrize("name", DIVERGENCES)
def test_a_student_equal_to_its_teacher_has_zero_divergence(tensors, name):
    _, _, t_hidden, t_head, targets = tensors
    kd = parse_kd_loss(name, 1.0, 1.0, 0)
    sums = chunked_losses(t_hidden, t_head, targets, kd, TeacherHidden(t_hidden, t_head), chunk_tokens=8)
    assert abs(sums.kd.item()) < 1e-4


def test_the_kd_gradient_is_the_weighted_mix_of_its_terms_not_the_ce_gradient(tensors):
    """whittle's 'default' weighting carried a gradient through its weight and cancelled KD; ours is a constant mix."""
    s_hidden, s_head, t_hidden, t_head, targets = tensors
    teacher = TeacherHidden(t_hidden, t_head)

    def grad_at(weight: float) -> torch.Tensor:
        kd = parse_kd_loss("forward_kl", 1.0, weight, 0)
        return torch.autograd.grad(chunked_losses(s_hidden, s_head, targets, kd, teacher, 8).objective, s_hidden)[0]

    g_ce, g_kd = grad_at(0.0), grad_at(1.0)
    torch.testing.assert_close(grad_at(0.7), 0.3 * g_ce + 0.7 * g_kd)
    assert (g_kd - g_ce).abs().max() > 1e-3
    sums = chunked_losses(s_hidden, s_head, targets, parse_kd_loss("forward_kl", 1.0, 0.7, 0), teacher)
    assert not sums.ce.requires_grad and not sums.kd.requires_grad  # the record carries no gradient


def test_kd_divergences_are_never_negative_and_js_is_bounded_by_log_2(tensors):
    """The wrong soft cross-entropy of whittle went negative; a divergence cannot."""
    s_hidden, s_head, t_hidden, t_head, targets = tensors
    for name in DIVERGENCES:
        kd = parse_kd_loss(name, 1.0, 1.0, 0)
        value = chunked_losses(s_hidden * 5, s_head, targets, kd, TeacherHidden(t_hidden * 5, t_head)).kd.item()
        assert value > 0
        if name == "js":
            assert value / TOKENS <= math.log(2) + 1e-6


def test_the_chunked_loss_keeps_no_tokens_by_vocab_tensor_for_backward():
    g = torch.Generator().manual_seed(0)
    tokens = 200  # well above the width, so [tokens, vocab] dwarfs the gradients of the inputs
    s_hidden = torch.randn(tokens, EMBD, generator=g, requires_grad=True)
    s_head = torch.randn(VOCAB, EMBD, generator=g, requires_grad=True)
    t_hidden, t_head = torch.randn(tokens, EMBD, generator=g), torch.randn(VOCAB, EMBD, generator=g)
    targets = torch.randint(0, VOCAB, (tokens,), generator=g)
    kd = parse_kd_loss("forward_kl", 1.0, 0.5, 0)
    inputs = {t.untyped_storage().data_ptr() for t in (s_hidden, s_head, t_hidden, t_head, targets)}

    def saved_beyond_inputs(fn) -> int:
        """Elements of the tensors autograd still keeps for backward once `fn` returned, other than the inputs."""
        saved = []

        def pack(t):
            storage = t.untyped_storage()
            saved.append((weakref.ref(t), storage.data_ptr(), storage.nbytes() // t.element_size()))
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = fn()  # noqa: F841 (holds the graph while we count)
            gc.collect()
            alive = {ptr: n for ref, ptr, n in saved if ref() is not None and ptr not in inputs}
        return sum(alive.values())

    chunked = saved_beyond_inputs(lambda: chunked_losses(s_hidden, s_head, targets, kd,
                                                         TeacherHidden(t_hidden, t_head), chunk_tokens=8))
    naive = saved_beyond_inputs(lambda: naive_loss("forward_kl", s_hidden, s_head, t_hidden, t_head, targets, 1.0,
                                                   0.5, None))
    assert naive >= tokens * VOCAB  # the reference keeps full logits for backward ...
    assert chunked <= s_hidden.numel() + s_head.numel()  # ... the chunked loss only its inputs' gradients


def test_teacher_topk_is_the_top_k_of_the_full_logits_in_descending_order(tensors):
    _, _, t_hidden, t_head, _ = tensors
    top = teacher_topk(t_hidden.reshape(1, TOKENS, EMBD), t_head, 7, chunk_tokens=10)
    ref = (t_hidden @ t_head.T).topk(7, dim=-1)
    assert top.values.shape == (1, TOKENS, 7) and top.indices.dtype == torch.int32
    torch.testing.assert_close(top.values[0], ref.values)
    assert torch.equal(top.indices[0].long(), ref.indices)


def test_loss_sums_add_up_over_chunk_sizes(tensors):
    s_hidden, s_head, t_hidden, t_head, targets = tensors
    kd = parse_kd_loss("js", 2.0, 0.5, 0)
    sums = [chunked_losses(s_hidden, s_head, targets, kd, TeacherHidden(t_hidden, t_head), chunk_tokens=c)
            for c in (1, 8, 1024)]
    for other in sums[1:]:
        torch.testing.assert_close(other.objective, sums[0].objective)
    assert isinstance(sums[0], LossSums)


@pytest.mark.parametrize("name,temperature,weight,top_k", [
    ("kl", 1.0, 0.5, 8), ("simple_cross_entropy", 1.0, 0.5, 8), ("forward_kl", 0.0, 0.5, 8),
    ("forward_kl", 1.0, 1.5, 8), ("topk_js", 1.0, 0.5, 0)])
def test_unknown_or_meaningless_kd_settings_are_usage_errors(name, temperature, weight, top_k):
    with pytest.raises(UsageError):
        parse_kd_loss(name, temperature, weight, top_k)
