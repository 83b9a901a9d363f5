"""The teacher-logit cache: written once, read by other students and rank counts, never misaligned."""

import pytest
import torch
from train_support import make_data, make_model, one_thread  # noqa: F401 (autouse fixture)

from headstart.errors import UsageError
from headstart.settings import make
from headstart.train import train
from headstart.train.config import TrainConfig
from headstart.train.logit_cache import LogitCache
from headstart.train.losses import TeacherTopK

KEY = {"tokenizer": "abc", "vocab_size": 50, "top_k": 4, "seq_len": 6, "batch_size": 8, "seed": 0,
       "data": {"tokenizer": "abc", "train_tokens": 1000}, "teacher": {"config": {}, "weights": "w"}}


def windows_and_topk(step: int) -> tuple[torch.Tensor, TeacherTopK]:
    g = torch.Generator().manual_seed(step)
    windows = torch.randint(0, 50, (8, 7), generator=g)
    values, indices = torch.randn(8, 6, 50, generator=g).topk(4, dim=-1)
    return windows, TeacherTopK(values, indices.to(torch.int32))


def started(root) -> LogitCache:
    """A cache with one shard: what makes it exist on disk."""
    cache = LogitCache.open(root, KEY, writable=True)
    assert not root.exists()  # opening writes nothing
    cache.write(0, 0, *windows_and_topk(0))
    return cache


def test_rows_written_by_two_ranks_are_read_back_by_any_split_of_rows(tmp_path):
    cache = LogitCache.open(tmp_path / "c", KEY, writable=True)
    windows, topk = windows_and_topk(3)
    for first in (0, 4):  # two ranks, four rows each
        cache.write(3, first, windows[first:first + 4], TeacherTopK(topk.values[first:first + 4],
                                                                    topk.indices[first:first + 4]))
    reader = LogitCache.open(tmp_path / "c", {k: v for k, v in KEY.items() if k != "teacher"}, writable=False)
    for first, rows in ((0, 8), (2, 4), (5, 3)):
        got = reader.read(3, first, windows[first:first + rows])
        assert torch.equal(got.values, topk.values[first:first + rows])
        assert torch.equal(got.indices, topk.indices[first:first + rows])
    assert reader.read(4, 0, windows) is None  # never written


def test_logits_of_other_windows_are_refused_not_used(tmp_path):
    """whittle's loader handed batch k the logits of another batch; here the window hashes catch it."""
    cache = LogitCache.open(tmp_path / "c", KEY, writable=True)
    w0, _t0 = windows_and_topk(0)
    w1, t1 = windows_and_topk(1)
    cache.write(1, 0, w1, t1)
    (tmp_path / "c" / "step-00000001-rows-00000-00008.safetensors").rename(
        tmp_path / "c" / "step-00000000-rows-00000-00008.safetensors")
    with pytest.raises(UsageError, match="other tokens"):
        cache.read(0, 0, w0)
    changed = w1.clone()
    changed[5, 3] += 1  # one token of one window
    cache.write(1, 0, w1, t1)
    with pytest.raises(UsageError, match="row 5"):
        cache.read(1, 0, changed)


@pytest.mark.parametrize("change", [{"seq_len": 7}, {"seed": 1}, {"top_k": 8}, {"tokenizer": "xyz"},
                                    {"teacher": {"config": {}, "weights": "other"}}])
def test_a_cache_of_other_settings_is_a_usage_error(tmp_path, change):
    started(tmp_path / "c")
    with pytest.raises(UsageError):
        LogitCache.open(tmp_path / "c", KEY | change, writable=True)


def test_a_cache_of_larger_k_serves_a_smaller_one(tmp_path):
    started(tmp_path / "c")
    assert LogitCache.open(tmp_path / "c", KEY | {"top_k": 2}, writable=False).stored_k == 4


def test_a_missing_or_corrupt_cache_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not a logit cache"):
        LogitCache.open(tmp_path / "none", KEY, writable=False)
    cache = LogitCache.open(tmp_path / "c", KEY, writable=True)
    windows, topk = windows_and_topk(0)
    cache.write(0, 0, windows, topk)
    shard = tmp_path / "c" / "step-00000000-rows-00000-00008.safetensors"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(UsageError, match="corrupt"):
        cache.read(0, 0, windows)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache_world")
    data = make_data(root)
    return {"data": data, "student": make_model(root / "student", root / "tokenizer"),
            "teacher": make_model(root / "teacher", root / "tokenizer", "teacher", seed=1), "root": root}


def run(world, out: str, **fields):
    base = {"student": world["student"], "data": world["data"], "out": world["root"] / out, "tokens": 768,
            "seq_len": 16, "batch_size": 8, "micro_batch_size": 4, "lr": 3e-3, "eval_every": 100,
            "checkpoint_every": 100, "kd": "topk_forward_kl", "kd_top_k": 8, "logit_cache": world["root"] / "cache"}
    return train(make(TrainConfig, base | fields))


def test_a_student_trained_from_the_cache_matches_one_trained_while_the_teacher_filled_it(world):
    filled = run(world, "fill", teacher=world["teacher"])
    assert len(list((world["root"] / "cache").glob("step-*.safetensors"))) == filled["steps"]
    cached = run(world, "read", micro_batch_size=2)  # no teacher at all; another micro-batching
    assert cached["teacher_flops"] == 0 and cached["cached_teacher_flops"] == filled["teacher_flops"] > 0
    assert cached["val_loss"] == pytest.approx(filled["val_loss"], rel=1e-5)
    smaller_k = run(world, "k4", kd="topk_js", kd_top_k=4)
    assert smaller_k["cached_teacher_flops"] == filled["teacher_flops"]


def test_reading_past_the_end_of_the_cache_without_a_teacher_is_a_usage_error(world):
    if not (world["root"] / "cache" / "cache.json").exists():
        run(world, "fill2", teacher=world["teacher"])
    with pytest.raises(UsageError, match="no teacher logits for step 6"):
        run(world, "longer", tokens=768 * 2)
    assert not (world["root"] / "longer").exists()  # refused before anything was written
