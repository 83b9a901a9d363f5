"""TokenWindows: deterministic seeded batches, exact resume, rank slices, fixed evaluation windows."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from headstart.data import TokenWindows, load_manifest, open_split
from headstart.data.prepare import prepare_data
from headstart.errors import UsageError

SEQ = 8


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """About 1 000 train tokens of a word-level tokenizer (ids 0..101)."""
    root = tmp_path_factory.mktemp("loader")
    vocab = {"<|endoftext|>": 0, "[UNK]": 1} | {f"w{i}": i + 2 for i in range(100)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="<|endoftext|>").save_pretrained(
        root / "tok"
    )
    rng = np.random.default_rng(0)
    lines = [json.dumps({"text": " ".join(f"w{i}" for i in rng.integers(0, 100, 20))}) for _ in range(50)]
    (root / "c.jsonl").write_text("\n".join(lines))
    prepare_data([str(root / "c.jsonl")], root / "data", tokenizer=str(root / "tok"), val_fraction=0.1)
    return root / "data"


def test_windows_tile_the_split_with_one_shared_boundary_token(data_dir):
    windows = TokenWindows(data_dir, "train", SEQ)
    tokens = np.asarray(open_split(load_manifest(data_dir), "train"))
    assert len(windows) == (len(tokens) - 1) // SEQ
    every = windows.fixed_windows(10**9)
    assert every.shape == (len(windows), SEQ + 1) and every.dtype == torch.int64
    for i in (0, 1, len(windows) - 1):
        assert every[i].tolist() == tokens[i * SEQ : i * SEQ + SEQ + 1].tolist()


def test_fixed_windows_are_the_first_windows_in_order(data_dir):
    windows = TokenWindows(data_dir, "validation", SEQ)
    first = windows.fixed_windows(3 * SEQ)
    assert first.shape == (3, SEQ + 1)
    assert torch.equal(first, windows.fixed_windows(10**9)[:3])
    assert windows.fixed_windows(1).shape == (1, SEQ + 1)


def test_batches_are_deterministic_in_seed_and_index(data_dir):
    a, b = TokenWindows(data_dir, "train", SEQ), TokenWindows(data_dir, "train", SEQ)
    assert torch.equal(a.batch(3, 4, seed=7), b.batch(3, 4, seed=7))
    assert not torch.equal(a.batch(3, 4, seed=7), a.batch(3, 4, seed=8))
    assert not torch.equal(a.batch(3, 4, seed=7), a.batch(4, 4, seed=7))


def test_resume_from_a_fresh_object_equals_continuing(data_dir):
    continued = TokenWindows(data_dir, "train", SEQ)
    steps = [continued.batch(i, 6, seed=1) for i in range(60)]  # several epochs
    resumed = TokenWindows(data_dir, "train", SEQ)
    assert all(torch.equal(resumed.batch(i, 6, seed=1), steps[i]) for i in range(37, 60))


def test_each_epoch_visits_every_window_once_in_a_new_order(data_dir):
    windows = TokenWindows(data_dir, "train", SEQ)
    n, batch = len(windows), 5  # n is not a multiple of 5, so batches straddle epochs
    rows = torch.cat([windows.batch(i, batch, seed=0) for i in range(2 * n // batch + 1)])
    all_windows = {tuple(w) for w in windows.fixed_windows(10**9).tolist()}
    first, second = rows[:n].tolist(), rows[n : 2 * n].tolist()
    assert {tuple(w) for w in first} == all_windows and len({tuple(w) for w in first}) == n
    assert {tuple(w) for w in second} == all_windows
    assert first != second


def test_rank_slices_together_are_the_global_batch(data_dir):
    windows = TokenWindows(data_dir, "train", SEQ)
    for index in (0, 11, 40):
        whole = windows.batch(index, 12, seed=5)
        parts = [windows.batch(index, 12, seed=5, rank=r, world_size=4) for r in range(4)]
        assert all(p.shape == (3, SEQ + 1) for p in parts)
        assert torch.equal(torch.cat(parts), whole)


def test_bad_loader_settings_are_usage_errors(data_dir):
    with pytest.raises(UsageError, match="too few"):
        TokenWindows(data_dir, "validation", 10**6)
    with pytest.raises(UsageError, match="no split"):
        TokenWindows(data_dir, "test", SEQ)
    with pytest.raises(UsageError, match="multiple of the number of ranks"):
        TokenWindows(data_dir, "train", SEQ).batch(0, 10, seed=0, rank=0, world_size=4)
