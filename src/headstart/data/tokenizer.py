"""Tokenizers: load one by folder or short name, fingerprint it, or train a small byte-level BPE.

Data and models are tied together by the tokenizer's fingerprint, not its name: two copies of
the same vocabulary match wherever they live, and a different vocabulary never does.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from headstart.errors import UsageError
from headstart.model import register_auto_classes

END_OF_TEXT = "<|endoftext|>"

# short name -> (asset kind, asset name) understood by headstart.assets.require_asset
SHORT_NAMES: dict[str, tuple[str, str]] = {
    "gpt2": ("tokenizers", "gpt2"),
    "neox": ("tokenizers", "neox"),
    "pythia": ("tokenizers", "neox"),
    "smollm2": ("models", "smollm2-135m"),
}

_FOLDER_FIX = "pass a folder with tokenizer.json (a tokenizer or model folder saved by transformers)"


def resolve_tokenizer_path(name_or_path: str | Path) -> Path:
    """An existing path wins; otherwise a short name is looked up among the fetched assets."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if str(name_or_path) in SHORT_NAMES:
        from headstart.assets import require_asset  # lazy: assets pull heavy optional packages

        return Path(require_asset(*SHORT_NAMES[str(name_or_path)]))
    from headstart.model.registry import short_name_dir  # a model's short name names its tokenizer too

    model_dir = short_name_dir(str(name_or_path))
    if model_dir is not None:
        return model_dir
    raise UsageError(
        f"tokenizer {str(name_or_path)!r} is neither an existing folder nor a known short name",
        f"{_FOLDER_FIX}, or one of {', '.join(SHORT_NAMES)}",
    )


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    """Load a fast tokenizer; anything else (a model folder without one, a slow-only one) is a UsageError."""
    path = resolve_tokenizer_path(name_or_path)
    if not path.is_dir():
        raise UsageError(f"tokenizer path {path} is not a folder", _FOLDER_FIX)
    try:
        register_auto_classes()  # a headstart-architecture model folder must not prompt for remote code
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as err:  # transformers raises many types for "this folder is not a tokenizer"
        lines = str(err).strip().splitlines()
        reason = "no tokenizer.json" if not (path / "tokenizer.json").exists() else (lines or [type(err).__name__])[0]
        raise UsageError(f"{path} is not a tokenizer folder ({reason})", _FOLDER_FIX) from err
    if not getattr(tok, "is_fast", False):
        raise UsageError(f"{path} holds only a slow (Python) tokenizer", "save it with tokenizer.json")
    return tok


def backend_of(tok: PreTrainedTokenizerBase | Tokenizer) -> Tokenizer:
    """The Rust `tokenizers.Tokenizer` behind a fast HF tokenizer (or the tokenizer itself)."""
    return tok if isinstance(tok, Tokenizer) else tok.backend_tokenizer


def eos_id(tok: PreTrainedTokenizerBase) -> int:
    """The end-of-text id that separates documents in the token stream.

    `<|endoftext|>` wins where the vocabulary has it: chat-tuned tokenizers (SmolLM2-Instruct's
    eos is `<|im_end|>`) keep it as the pretraining document separator.
    """
    separator = backend_of(tok).token_to_id("<|endoftext|>")
    if separator is not None:
        return int(separator)
    if tok.eos_token_id is None:
        raise UsageError(
            f"tokenizer {tok.name_or_path} has no end-of-text (eos) token, so documents cannot be separated",
            "set one (tokenizer.eos_token = '<|endoftext|>') and save_pretrained the folder again",
        )
    return int(tok.eos_token_id)


def vocab_size(tok: PreTrainedTokenizerBase | Tokenizer) -> int:
    """One more than the largest id the tokenizer can emit, added tokens included."""
    return max(backend_of(tok).get_vocab(with_added_tokens=True).values()) + 1


def _canonical(tok: PreTrainedTokenizerBase | Tokenizer) -> dict[str, Any]:
    """Vocabulary, merges and added tokens, in a form that does not depend on how they were saved."""
    spec = json.loads(backend_of(tok).to_str())
    model = spec["model"]
    vocab = model.get("vocab")
    if isinstance(vocab, dict):
        vocab = sorted(vocab.items(), key=lambda item: item[1])
    merges = [m.split(" ", 1) if isinstance(m, str) else m for m in model.get("merges", [])]
    added = sorted((t["id"], t["content"], bool(t["special"])) for t in spec.get("added_tokens", []))
    return {"type": model["type"], "vocab": vocab, "merges": merges, "added_tokens": added}


def tokenizer_fingerprint(tok: PreTrainedTokenizerBase | Tokenizer) -> str:
    """sha256 of the canonical vocabulary: equal for copies of one tokenizer, different otherwise."""
    text = json.dumps(_canonical(tok), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_bpe_vocab_size(vocab_size: int) -> None:
    """A byte-level BPE needs its 256 bytes and eos before it can learn anything."""
    if vocab_size < 258:
        raise UsageError(
            f"--train-tokenizer {vocab_size} is too small", "use at least 258 (256 bytes + eos + one merge)"
        )


def train_bpe(
    texts: Iterable[str], vocab_size: int, out_dir: str | Path, length: int | None = None
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE with `<|endoftext|>` as eos and save it as an HF folder.

    Byte-level means every text is encodable (no unknown token), which a tokenizer trained on a
    small corpus needs. `length` (number of texts) only feeds the progress bar.
    """
    check_bpe_vocab_size(vocab_size)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=sys.stderr.isatty(),
    )
    tok.train_from_iterator(texts, trainer, length=length)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=END_OF_TEXT, bos_token=END_OF_TEXT, unk_token=END_OF_TEXT
    )
    hf.save_pretrained(out_dir)
    return hf
