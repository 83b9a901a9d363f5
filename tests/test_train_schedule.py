"""Learning-rate schedules: linear warmup, then cosine or warmup-stable-decay, ending at the minimum."""

import itertools
import math

import pytest
import torch

from headstart.train.schedule import build_scheduler, lr_multiplier

TOTAL, WARMUP, DECAY, MIN = 100, 10, 20, 0.1


def curve(schedule: str) -> list[float]:
    return [lr_multiplier(s, TOTAL, WARMUP, schedule, MIN, DECAY) for s in range(TOTAL)]


@pytest.mark.parametrize("schedule", ["cosine", "wsd"])
def test_warmup_rises_linearly_to_the_peak(schedule):
    lrs = curve(schedule)
    assert lrs[:WARMUP] == pytest.approx([(s + 1) / WARMUP for s in range(WARMUP)])


def test_cosine_falls_monotonically_from_the_peak_to_the_minimum_at_the_last_step():
    lrs = curve("cosine")[WARMUP:]
    assert all(a >= b for a, b in itertools.pairwise(lrs))
    assert lrs[-1] == pytest.approx(MIN)
    halfway = (TOTAL - WARMUP) // 2 - 1  # progress 1/2: the cosine's midpoint
    assert lrs[halfway] == pytest.approx(MIN + (1 - MIN) * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_wsd_holds_the_peak_then_decays_linearly_over_its_last_steps():
    lrs = curve("wsd")
    assert lrs[WARMUP:TOTAL - DECAY] == pytest.approx([1.0] * (TOTAL - DECAY - WARMUP))
    decay = lrs[TOTAL - DECAY:]
    steps = [a - b for a, b in itertools.pairwise(decay)]
    assert steps == pytest.approx([(1 - MIN) / DECAY] * (DECAY - 1))
    assert decay[-1] == pytest.approx(MIN)


def test_the_scheduler_drives_the_optimizer_and_resumes_from_its_state():
    def fresh():
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
        return opt, build_scheduler(opt, TOTAL, WARMUP, "wsd", MIN, DECAY)

    opt, sched = fresh()
    for _ in range(TOTAL - 5):
        opt.step()
        sched.step()
    state = sched.state_dict()
    _opt2, sched2 = fresh()
    sched2.load_state_dict(state)
    assert sched2.get_last_lr() == sched.get_last_lr() == pytest.approx([2.0 * curve("wsd")[TOTAL - 5]])
