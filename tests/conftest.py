"""Tiny random models of each family, built in memory with transformers' own classes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
import torch
import transformers
from evalset_support import ROWS
from tokenizers import Tokenizer, models, pre_tokenizers

VOCAB = 96


def word_tokenizer(folder: Path, words: int | list[str], eos: bool = True) -> Path:
    """A whitespace word-level tokenizer saved as an HF folder, with predictable ids.

    Id 0 is <|endoftext|> (the eos; without `eos` it is a plain <|end|> token and there is no
    end-of-text token at all), id 1 is [UNK], then the words: w0, w1, ... when given a count.
    """
    names = [f"w{i}" for i in range(words)] if isinstance(words, int) else words
    vocab = {"<|endoftext|>" if eos else "<|end|>": 0, "[UNK]": 1} | {w: i + 2 for i, w in enumerate(names)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]",
                                         eos_token="<|endoftext|>" if eos else None).save_pretrained(folder)
    return folder


# One entry per supported family: a tiny config of its transformers class. Every family-parametrised
# test (import, export, activation, extraction, counts, importance) runs on each.
TINY_CONFIGS: dict[str, Callable[[], transformers.PretrainedConfig]] = {
    "gpt_neox": lambda: transformers.GPTNeoXConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=80,
        rotary_pct=0.25, max_position_embeddings=64, tie_word_embeddings=False),
    "llama": lambda: transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=48, num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2,
        head_dim=8, intermediate_size=64, rope_theta=100000.0, max_position_embeddings=64, tie_word_embeddings=True),
    "mistral": lambda: transformers.MistralConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
        intermediate_size=40, max_position_embeddings=64, sliding_window=None, tie_word_embeddings=False),
    "qwen2": lambda: transformers.Qwen2Config(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=48, max_position_embeddings=64, tie_word_embeddings=False),
    "qwen3": lambda: transformers.Qwen3Config(  # head_dim 12 is not hidden / heads (8), as in real Qwen3
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=12, intermediate_size=48, max_position_embeddings=64, tie_word_embeddings=True),
    "phi3": lambda: transformers.Phi3Config(  # the vocabulary holds Phi3Config's default pad id (32000), which
        # a stock export falls back to while it carries no special tokens of the teacher
        vocab_size=32001, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=48, max_position_embeddings=64, original_max_position_embeddings=64,
        partial_rotary_factor=0.5, bos_token_id=1, eos_token_id=0, pad_token_id=0),
    "olmo2": lambda: transformers.Olmo2Config(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=48, max_position_embeddings=64, bos_token_id=1, eos_token_id=0, pad_token_id=0),
    "gpt2": lambda: transformers.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=3, n_head=4, n_positions=64),
}


def tiny_hf_config(family: str) -> transformers.PretrainedConfig:
    return TINY_CONFIGS[family]()


def tiny_hf_model(family: str, seed: int = 0, config: transformers.PretrainedConfig | None = None
                  ) -> transformers.PreTrainedModel:
    """A random HF model whose biases and norms are randomised too, so a mapping error cannot hide."""
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config or tiny_hf_config(family), dtype=torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def save_tiny(family: str, path: Path, seed: int = 0) -> transformers.PreTrainedModel:
    model = tiny_hf_model(family, seed)
    model.save_pretrained(path)
    return model


@pytest.fixture(params=list(TINY_CONFIGS))
def family(request) -> str:
    return request.param


@pytest.fixture
def tokens() -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 17), generator=torch.Generator().manual_seed(1))


@pytest.fixture
def evalsets(tmp_path, monkeypatch):
    """A cache whose `evalsets` asset holds three copies of each row of evalset_support.ROWS."""
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "evalsets" / "olmo"
    folder.mkdir(parents=True)
    for task, row in ROWS.items():
        table = pa.Table.from_pylist([row] * 3)
        with pa.OSFile(str(folder / f"{task}.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
    (folder / "asset.json").write_text("{}")
    return folder
