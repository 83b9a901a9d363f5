"""The model card (README.md) of every folder headstart writes: where the model came from, how it was trained.

The facts live in the card's metadata under `headstart` (so a later step reads them back and
adds its own: extract writes teacher and spec, train adds tokens, KD loss and validation) and
are shown as a table. huggingface_hub's ModelCard reads and writes the format the hub expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

CARD_FILE = "README.md"


def read_card_facts(folder: Path | None) -> dict[str, Any]:
    """The facts of a card headstart wrote in `folder`; {} for none, or for a card someone else wrote."""
    file = Path(folder or "") / CARD_FILE
    if folder is None or not file.is_file():
        return {}
    try:
        facts = ModelCard.load(file).data.to_dict().get("headstart")
    except Exception:  # a hand-written README is not a card of ours: nothing to carry
        return {}
    return facts if isinstance(facts, dict) else {}


def write_card(folder: Path, facts: dict[str, Any]) -> None:
    data = ModelCardData(library_name="transformers", pipeline_tag="text-generation", tags=["headstart"],
                         headstart=facts)
    rows = "".join(f"| {key.replace('_', ' ')} | {_value(value)} |\n" for key, value in facts.items())
    title = f"A student of {Path(facts['teacher']).name}" if facts.get("teacher") else "A model"
    body = (f"# {title}, written by headstart\n\nLoads with `transformers.AutoModelForCausalLM.from_pretrained` "
            f"(with `trust_remote_code=True` where config.json names headstart's own architecture).\n\n"
            + (f"| | |\n|---|---|\n{rows}" if rows else ""))
    ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}").save(folder / CARD_FILE)


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_value(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
