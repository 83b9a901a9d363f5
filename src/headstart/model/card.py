"""The model card (README.md) of every folder headstart writes: where the model came from, how it was trained,
how it scored.

The facts live in the card's metadata under `headstart` (so a later step reads them back and
adds its own: extract writes teacher and spec, train adds tokens, KD loss and validation) and
are shown as a table. `headstart eval` puts its numbers on the card of a student it scored: under
`headstart_evaluation` (the latest perplexity, the latest result of each task), as the hub's
`model-index` eval results, and as a second table. A retrained student's card starts without them,
since they scored other weights. huggingface_hub's ModelCard reads and writes the format the hub
expects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from headstart.atomic import write_text_atomic

CARD_FILE = "README.md"
EVALUATION = "headstart_evaluation"  # the card's metadata key of `headstart eval`'s numbers
PERPLEXITY_NUMBERS = ("data", "split", "tokens", "seq_len", "loss", "perplexity")
TASK_NUMBERS = ("items", "acc", "acc_norm", "acc_bytes", "chance")
SCORED_BY = {"headstart": "headstart eval", "lm-eval": "lm-evaluation-harness (headstart eval --backend lm-eval)"}


def _card_metadata(folder: Path | None) -> dict[str, Any]:
    """The metadata of a card headstart wrote in `folder` (its `headstart` facts a dict); {} for any other."""
    file = Path(folder or "") / CARD_FILE
    if folder is None or not file.is_file():
        return {}
    try:
        text = file.read_text()  # one without a metadata block is not ours (and the hub's parser warns of it)
        metadata = ModelCard(text).data.to_dict() if text.startswith("---") else {}
    except Exception:  # a hand-written README is not a card of ours
        return {}
    return metadata if isinstance(metadata.get("headstart"), dict) else {}


def read_card_facts(folder: Path | None) -> dict[str, Any]:
    """The facts of a card headstart wrote in `folder`; {} for none, or for a card someone else wrote."""
    return _card_metadata(folder).get("headstart", {})


def write_card(folder: Path, facts: dict[str, Any], evaluation: dict[str, Any] | None = None) -> None:
    """README.md of `folder` (written atomically): its facts, and `evaluation` where it was scored."""
    evaluation = evaluation or {}
    results = _eval_results(evaluation)
    data = ModelCardData(library_name="transformers", pipeline_tag="text-generation", tags=["headstart"],
                         model_name=Path(folder).name if results else None, eval_results=results or None,
                         headstart=facts, **{EVALUATION: evaluation} if evaluation else {})
    rows = "".join(f"| {key.replace('_', ' ')} | {_value(value)} |\n" for key, value in facts.items())
    title = f"A student of {Path(facts['teacher']).name}" if facts.get("teacher") else "A model"
    body = (f"# {title}, written by headstart\n\nLoads with `transformers.AutoModelForCausalLM.from_pretrained` "
            f"(with `trust_remote_code=True` where config.json names headstart's own architecture; there, "
            f"`AutoTokenizer.from_pretrained(path, trust_remote_code=False)` loads the tokenizer without first "
            f"asking whether to run the folder's code).\n\n"
            + (f"| | |\n|---|---|\n{rows}" if rows else "") + _evaluation_table(evaluation))
    write_text_atomic(Path(folder) / CARD_FILE, str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")))


def record_evaluation(folder: Path, perplexity: dict[str, Any] | None, tasks: dict[str, dict[str, Any]],
                      scored_by: str, split: str) -> Path | None:
    """Put `headstart eval`'s numbers on the card of a student headstart wrote in `folder`; the card's path.

    Only a folder whose card holds headstart's facts (one extract or train wrote) is touched: a
    teacher's or anyone else's folder, and one that is not writable, are left as they are (None).
    A perplexity replaces the card's earlier one and a task's result that task's earlier one; the
    others stay. `split` is the split the tasks scored.
    """
    folder = Path(folder)
    metadata = _card_metadata(folder)
    if not metadata.get("headstart") or not os.access(folder, os.W_OK):
        return None
    evaluation = dict(metadata.get(EVALUATION) or {})
    if perplexity is not None:
        evaluation["perplexity"] = {k: perplexity[k] for k in PERPLEXITY_NUMBERS}
    evaluation["tasks"] = (evaluation.get("tasks") or {}) | {
        task: {k: r[k] for k in TASK_NUMBERS if k in r} | {"split": split, "scored_by": scored_by}
        for task, r in tasks.items()}
    if not evaluation["tasks"]:
        del evaluation["tasks"]
    write_card(folder, metadata["headstart"], evaluation)
    return folder / CARD_FILE


def _eval_results(evaluation: dict[str, Any]) -> list[EvalResult]:
    """The hub's model-index entries of the numbers: perplexity and loss on the data, each task's accuracies."""
    results = []
    if "perplexity" in evaluation:
        p = evaluation["perplexity"]
        results += [EvalResult(task_type="text-generation", task_name=f"Language modelling ({SCORED_BY['headstart']})",
                               dataset_type=Path(p["data"]).name, dataset_name=str(p["data"]),
                               dataset_split=p["split"], dataset_args={"tokens": p["tokens"], "seq_len": p["seq_len"]},
                               metric_type=metric, metric_value=p[metric], metric_name=metric)
                    for metric in ("perplexity", "loss")]
    for task, r in (evaluation.get("tasks") or {}).items():
        by = SCORED_BY.get(r["scored_by"], r["scored_by"])
        results += [EvalResult(task_type="text-generation", task_name=f"{task}, zero-shot ({by})", dataset_type=task,
                               dataset_name=task, dataset_split=r["split"],
                               dataset_args={"num_few_shot": 0, "items": r["items"]}, metric_type=metric,
                               metric_value=r[metric], metric_name=metric)
                    for metric in ("acc", "acc_norm", "acc_bytes") if metric in r]
    return results


def _evaluation_table(evaluation: dict[str, Any]) -> str:
    rows = []
    if "perplexity" in evaluation:
        p = evaluation["perplexity"]
        rows.append(f"| perplexity | {p['data']} ({p['split']}, first {p['tokens']:,} tokens, windows of "
                    f"{p['seq_len']}) | {p['perplexity']:.2f} (loss {p['loss']:.4f}) |")
    for task, r in (evaluation.get("tasks") or {}).items():
        chance = f" (chance {r['chance']:.3f})" if "chance" in r else ""
        scores = ", ".join(f"{m} {r[m]:.3f}" for m in ("acc", "acc_norm", "acc_bytes") if m in r)
        rows.append(f"| {task} | {r['split']}, {r['items']} items, zero-shot, {r['scored_by']} | {scores}{chance} |")
    if not rows:
        return ""
    return ("\n## Evaluation\n\nThe latest `headstart eval` of these weights.\n\n| | on | result |\n|---|---|---|\n"
            + "\n".join(rows) + "\n")


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_value(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
