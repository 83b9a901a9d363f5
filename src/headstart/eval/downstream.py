"""Zero-shot accuracy on multiple-choice tasks: pick the choice whose continuation is most likely.

`acc` compares the summed log-likelihoods of the continuations; `acc_norm` divides each by the
number of characters of its choice first, and `acc_bytes` by its UTF-8 bytes: lm-evaluation-
harness's definitions, which matter where choices differ in length (HellaSwag, ARC). Only the
continuation's positions are projected onto the vocabulary, so a large vocabulary costs little.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from headstart.data import eos_id, load_tokenizer
from headstart.eval.tasks import Item, load_task
from headstart.model.decoder import Decoder
from headstart.progress import progress_bar

Pair = tuple[list[int], list[int]]  # (context ids, continuation ids)


@dataclass(frozen=True)
class TaskResult:
    task: str
    items: int
    acc: float
    acc_norm: float
    acc_bytes: float
    chance: float  # the accuracy of guessing: mean of 1 / number of choices
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def continuation_logprobs(model: Decoder, pairs: list[Pair], batch_size: int = 8) -> list[float]:
    """log p(continuation | context) summed over the continuation's tokens, for each pair.

    Sequences longer than the model's context keep their last tokens. Batches hold sequences of
    similar length (sorted), right-padded, which a causal model never looks at.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    limit = model.config.max_positions + 1
    seqs = [(ctx + cont)[-limit:] for ctx, cont in pairs]
    order = sorted(range(len(pairs)), key=lambda i: -len(seqs[i]))
    scores = [0.0] * len(pairs)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        idx = torch.zeros(len(batch), len(seqs[batch[0]]) - 1, dtype=torch.long)
        for row, i in enumerate(batch):
            idx[row, : len(seqs[i]) - 1] = torch.tensor(seqs[i][:-1])
        hidden = model.hidden_states(idx.to(device))
        for row, i in enumerate(batch):
            end, n = len(seqs[i]) - 1, min(len(pairs[i][1]), len(seqs[i]) - 1)
            logits = F.linear(hidden[row, end - n: end], model.head_weight).float()
            targets = torch.tensor(seqs[i][-n:], device=device)
            scores[i] = F.log_softmax(logits, -1).gather(1, targets[:, None]).sum().item()
    model.train(was_training)
    return scores


def encode_items(tokenizer, items: list[Item]) -> list[Pair]:
    """Every (context, continuation) of every item, as ids; an empty context starts from eos."""
    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    eos = eos_id(tokenizer)
    return [(ids(ctx) or [eos], ids(cont)) for item in items for ctx, cont in zip(item.contexts, item.continuations,
                                                                                   strict=True)]


def item_logprobs(model: Decoder, tokenizer, items: list[Item], batch_size: int = 8,
                  desc: str = "choices") -> list[list[float]]:
    """log p(continuation | context) of every choice of every item, with progress every few batches."""
    pairs, logprobs, chunk = encode_items(tokenizer, items), [], batch_size * 4
    with progress_bar(total=len(pairs), desc=desc, unit="choice") as bar:
        for start in range(0, len(pairs), chunk):
            logprobs += continuation_logprobs(model, pairs[start:start + chunk], batch_size)
            bar.update(len(pairs[start:start + chunk]))
    out, k = [], 0
    for item in items:
        out.append(logprobs[k:k + len(item.continuations)])
        k += len(item.continuations)
    return out


# what each accuracy divides a choice's log-likelihood by, as lm-evaluation-harness does (its api/task.py)
NORMALISERS: dict[str, Callable[[str], int]] = {"acc": lambda choice: 1, "acc_norm": len,
                                                "acc_bytes": lambda choice: len(choice.encode("utf-8"))}


def accuracies(items: list[Item], logprobs: list[list[float]]) -> dict[str, float]:
    """acc, acc_norm and acc_bytes: the share of items whose right choice scores highest."""
    right = dict.fromkeys(NORMALISERS, 0)
    for item, scores in zip(items, logprobs, strict=True):
        for metric, length in NORMALISERS.items():
            normed = [s / max(length(c), 1) for s, c in zip(scores, item.choices, strict=True)]
            right[metric] += max(range(len(normed)), key=normed.__getitem__) == item.gold
    return {metric: n / len(items) for metric, n in right.items()}


def score_items(model: Decoder, tokenizer, items: list[Item], batch_size: int = 8,
                desc: str = "choices") -> dict[str, float]:
    """acc, acc_norm and acc_bytes of `model` on `items`."""
    return accuracies(items, item_logprobs(model, tokenizer, items, batch_size, desc))


def evaluate_task(model: Decoder, task: str, limit: int | None = None, batch_size: int = 8) -> TaskResult:
    """Zero-shot accuracy of `model` (with its own tokenizer) on the first `limit` items of `task`."""
    start = time.perf_counter()
    items = load_task(task, limit)
    scores = score_items(model, load_tokenizer(model.source_dir), items, batch_size, desc=task)
    chance = sum(1 / len(item.continuations) for item in items) / len(items)
    return TaskResult(task=task, items=len(items), chance=chance, seconds=time.perf_counter() - start, **scores)
