"""A transformers wrapper around `Decoder`, for students no stock architecture can hold.

Layer-wise students (each layer its own widths) and students whose embedding width is not
heads x head size are exported with `model_type: "headstart"`. This file and decoder.py are
copied into the exported folder and named in its `auto_map`, so the folder loads with
`AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)` without headstart
installed. With headstart imported, the classes are registered and the flag is not needed.

It is an ordinary causal LM of transformers 5: `generate` (GenerationMixin) with a KV cache
(transformers' `DynamicCache`), `attention_mask` for padded batches and `position_ids`.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .decoder import Decoder, DecoderConfig


class HeadstartConfig(PretrainedConfig):
    model_type = "headstart"

    def __init__(self, decoder: dict | None = None, use_cache: bool = True, **kwargs) -> None:
        self.decoder = decoder or {}
        self.use_cache = use_cache  # as stock causal LMs: a forward returns its cache unless told not to
        if self.decoder:  # the fields transformers' generation and caches read
            kwargs.setdefault("vocab_size", self.decoder["vocab_size"])
            kwargs.setdefault("tie_word_embeddings", self.decoder["tie_embeddings"])
            kwargs.setdefault("hidden_size", self.decoder["n_embd"])
            kwargs.setdefault("num_hidden_layers", len(self.decoder["layers"]))
            kwargs.setdefault("max_position_embeddings", self.decoder["max_positions"])
        super().__init__(**kwargs)

    def get_text_config(self, *_: object, **__: object) -> HeadstartConfig:
        """Itself: transformers reads a `decoder` field as a composite model's sub-config, ours is the layer table."""
        return self


class HeadstartForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = HeadstartConfig
    base_model_prefix = "model"
    _supports_sdpa = True

    def __init__(self, config: HeadstartConfig) -> None:
        super().__init__(config)
        self.model = Decoder(DecoderConfig.from_dict(config.decoder))
        self.post_init()

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.model.embed

    def set_input_embeddings(self, value: torch.nn.Embedding) -> None:
        """As stock models (`resize_token_embeddings` calls it); the vocabulary size saved with the folder follows."""
        self.model.embed = value
        self.model.config.vocab_size = self.config.decoder["vocab_size"] = value.num_embeddings

    def get_output_embeddings(self) -> torch.nn.Linear | None:
        """The head; None when it is the input embedding (tied), which resizing then resizes once."""
        return self.model.lm_head

    def set_output_embeddings(self, value: torch.nn.Linear) -> None:
        self.model.lm_head = value

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache: DynamicCache | None = None,
                labels: torch.Tensor | None = None, use_cache: bool | None = None, logits_to_keep: int = 0,
                past_key_values: DynamicCache | None = None, **_: object) -> CausalLMOutputWithPast:
        """Logits of `input_ids` after the cached tokens; `attention_mask` covers both (1 = token, 0 = pad).

        Without `position_ids`, a padded row's positions count its tokens only, so a left-padded
        sequence scores as it does alone.
        """
        cache = cache if cache is not None else past_key_values  # the older name, deprecated in transformers 5
        if cache is None and (self.config.use_cache if use_cache is None else use_cache):
            cache = DynamicCache(config=self.config)
        if position_ids is None and attention_mask is not None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1]:]
        hidden = self.model.hidden_states(input_ids, position_ids, attention_mask, cache)
        logits = torch.nn.functional.linear(hidden[:, -logits_to_keep:], self.model.head_weight)
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100
            )
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=cache)
