"""Fixed-length training windows over a prepared split, deterministic in (seed, batch index).

Window i holds tokens [i*seq_len, i*seq_len + seq_len + 1): seq_len inputs and, shifted by one,
their targets, so consecutive windows share one boundary token and every token after the first
is predicted exactly once per epoch. Windows are read across shard boundaries as from one
file: a window may begin in one shard and end in the next. A batch is a function of (seed, index) alone, so a resumed
run asks for batch k and gets what an uninterrupted run would have seen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from headstart.data.shards import load_manifest, open_split
from headstart.errors import UsageError


class TokenWindows:
    """Non-overlapping windows of one split, shuffled epoch by epoch with a seeded permutation."""

    def __init__(self, data_dir: str | Path, split: str, seq_len: int) -> None:
        self.manifest = load_manifest(data_dir)
        self.split = split
        self.seq_len = seq_len
        self._tokens = open_split(self.manifest, split)
        self._n_windows = (len(self._tokens) - 1) // seq_len
        if self._n_windows < 1:
            raise UsageError(
                f"the {split} split of {data_dir} has {len(self._tokens)} tokens, too few for one window of "
                f"{seq_len + 1}",
                "prepare more text or use a shorter sequence length",
            )
        self._order: tuple[tuple[int, int], np.ndarray] | None = None  # ((seed, epoch), permutation), last used

    def __len__(self) -> int:
        return self._n_windows

    def _permutation(self, seed: int, epoch: int) -> np.ndarray:
        """Each epoch visits every window once, in an order fixed by (seed, epoch)."""
        if self._order is None or self._order[0] != (seed, epoch):
            self._order = ((seed, epoch), np.random.default_rng([seed, epoch]).permutation(len(self)))
        return self._order[1]

    def _gather(self, window_ids: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self._tokens.windows(window_ids * self.seq_len, self.seq_len + 1))

    def batch(self, index: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
        """This rank's rows of global batch `index`: a LongTensor [batch_size // world_size, seq_len + 1].

        Global batch `index` is positions index*batch_size ... of the endless stream of epochs;
        rank r takes the r-th contiguous slice, so the ranks together hold the global batch.
        """
        if batch_size % world_size:
            raise UsageError(
                f"batch size {batch_size} does not divide over {world_size} ranks",
                "use a global batch size that is a multiple of the number of ranks",
            )
        per_rank = batch_size // world_size
        start = index * batch_size + rank * per_rank
        positions = np.arange(start, start + per_rank)
        window_ids = np.empty(per_rank, dtype=np.int64)
        for epoch in np.unique(positions // len(self)):
            in_epoch = positions // len(self) == epoch
            window_ids[in_epoch] = self._permutation(seed, int(epoch))[positions[in_epoch] % len(self)]
        return self._gather(window_ids)

    def fixed_windows(self, n_tokens: int) -> torch.Tensor:
        """The first windows of the split, in order, predicting about `n_tokens` tokens.

        For evaluation on a fixed token set: at least one window, at most the whole split.
        """
        n = min(len(self), max(1, n_tokens // self.seq_len))
        return self._gather(np.arange(n))
