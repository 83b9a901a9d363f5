"""Zero-shot multiple-choice tasks: each item is some (context, continuation) pairs and the right one.

The prompts are EleutherAI's lm-evaluation-harness's (0.4), so that numbers compare with published
ones: a choice is scored by the log-likelihood of its continuation after its context. The one
exception is commonsense_qa, scored as a cloze (the answer's text, as OLMo does) where lm-eval
scores the letter of a listed answer. The sets are the validation splits in the `evalsets` asset
(`headstart assets --only evalsets`), read with pyarrow; lm-eval scores the test split of
arc_easy, arc_challenge, openbookqa and sciq, and the validation split of the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from headstart.assets import require_asset
from headstart.errors import UsageError

SPLIT = "validation"  # the split of every task that the `evalsets` asset holds, and so the one scored


@dataclass(frozen=True)
class Item:
    """One question: choice i is `continuations[i]` after `contexts[i]`; `gold` is the right one.

    `choices[i]` is the text lm-eval calls the choice, whose length normalises its score (acc_norm).
    """

    contexts: list[str]
    continuations: list[str]
    gold: int
    choices: list[str]


def _choices(row: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(texts, labels) of an ARC-style `choices` field."""
    return row["choices"]["text"], row["choices"]["label"]


def _same_context(context: str, choices: list[str], gold: int) -> Item:
    return Item([context] * len(choices), [" " + c for c in choices], gold, choices)


def _hellaswag_text(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    return re.sub(r"\[.*?\]", "", text).replace("  ", " ")


def hellaswag(row: dict[str, Any]) -> Item:
    context = _hellaswag_text(f"{row['activity_label']}: {row['ctx_a']} {row['ctx_b'].capitalize()}")
    return _same_context(context, [_hellaswag_text(e) for e in row["endings"]], int(row["label"]))


def piqa(row: dict[str, Any]) -> Item:
    return _same_context(f"Question: {row['goal']}\nAnswer:", [row["sol1"], row["sol2"]], int(row["label"]))


def lettered_question(row: dict[str, Any]) -> Item:
    """ARC and CommonsenseQA: a question, lettered choices and the letter of the answer."""
    texts, labels = _choices(row)
    return _same_context(f"Question: {row['question']}\nAnswer:", texts, labels.index(row["answerKey"]))


def openbookqa(row: dict[str, Any]) -> Item:
    texts, labels = _choices(row)
    return _same_context(row["question_stem"], texts, labels.index(row["answerKey"]))


def sciq(row: dict[str, Any]) -> Item:
    choices = [row["distractor1"], row["distractor2"], row["distractor3"], row["correct_answer"]]
    return _same_context(f"{row['support'].lstrip()}\nQuestion: {row['question']}\nAnswer:", choices, 3)


def winogrande(row: dict[str, Any]) -> Item:
    """Partial scoring: each option fills the blank in the context; the rest of the sentence is scored."""
    sentence = row["sentence"]
    blank = sentence.index("_")
    rest = " " + sentence[blank + 1:].strip()
    contexts = [sentence[:blank] + option for option in (row["option1"], row["option2"])]
    return Item(contexts, [rest, rest], int(row["answer"]) - 1, contexts)


def boolq(row: dict[str, Any]) -> Item:
    context = f"{row['passage']}\nQuestion: {row['question']}?\nAnswer:"
    return Item([context, context], [" no", " yes"], int(row["answer"]), ["no", "yes"])


def copa(row: dict[str, Any]) -> Item:
    connector = {"cause": " because", "effect": " therefore"}[row["question"]]
    choices = [" " + c[0].lower() + c[1:] for c in (row["choice1"], row["choice2"])]  # lm-eval's: a space of its own
    return _same_context(row["premise"].strip()[:-1] + connector, choices, int(row["label"]))


def social_iqa(row: dict[str, Any]) -> Item:
    choices = [row["answerA"], row["answerB"], row["answerC"]]
    return _same_context(f"Q: {row['context']} {row['question']}\nA:", choices, int(row["label"]) - 1)


TASKS: dict[str, Callable[[dict[str, Any]], Item]] = {
    "hellaswag": hellaswag,
    "piqa": piqa,
    "arc_easy": lettered_question,
    "arc_challenge": lettered_question,
    "openbookqa": openbookqa,
    "sciq": sciq,
    "winogrande": winogrande,
    "boolq": boolq,
    "copa": copa,
    "social_iqa": social_iqa,
    "commonsense_qa": lettered_question,
}


def check_task_name(name: str) -> None:
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}", f"choose from {', '.join(TASKS)}")


def load_task(name: str, limit: int | None = None) -> list[Item]:
    """The first `limit` items (all when None) of a task's `SPLIT`, in file order."""
    check_task_name(name)
    path = require_asset("evalsets", "olmo") / f"{name}.arrow"
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_stream(source).read_all()
    rows = table.slice(0, limit).to_pylist() if limit else table.to_pylist()
    return [TASKS[name](row) for row in rows]
