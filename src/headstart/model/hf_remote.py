"""A transformers wrapper around `Decoder`, for students no stock architecture can hold.

Layer-wise students (each layer its own widths) and students whose embedding width is not
heads x head size are exported with `model_type: "headstart"`. This file and decoder.py are
copied into the exported folder and named in its `auto_map`, so the folder loads with
`AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)` without headstart
installed. With headstart imported, the classes are registered and the flag is not needed.
"""

from __future__ import annotations

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

from .decoder import Decoder, DecoderConfig


class HeadstartConfig(PretrainedConfig):
    model_type = "headstart"

    def __init__(self, decoder: dict | None = None, **kwargs) -> None:
        self.decoder = decoder or {}
        if self.decoder:
            kwargs.setdefault("vocab_size", self.decoder["vocab_size"])
            kwargs.setdefault("tie_word_embeddings", self.decoder["tie_embeddings"])
        super().__init__(**kwargs)


class HeadstartForCausalLM(PreTrainedModel):
    config_class = HeadstartConfig
    base_model_prefix = "model"

    def __init__(self, config: HeadstartConfig) -> None:
        super().__init__(config)
        self.model = Decoder(DecoderConfig.from_dict(config.decoder))
        self.post_init()

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.model.embed

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None, **_: object) -> CausalLMOutput:
        logits = self.model(input_ids)
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100
            )
        return CausalLMOutput(loss=loss, logits=logits)
