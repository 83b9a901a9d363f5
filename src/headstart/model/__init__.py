"""One decoder for GPT-NeoX/Pythia, GPT-2 and the Llama lineage (families.FAMILIES), with HF import and export."""

from headstart.model.checkpoint import build_model, load_model, resolve_model_dir, save_model, weights_fingerprint
from headstart.model.decoder import Decoder, DecoderConfig, LayerShape, init_weights

__all__ = ["Decoder", "DecoderConfig", "LayerShape", "build_model", "init_weights", "load_model",
           "register_auto_classes", "resolve_model_dir", "save_model", "weights_fingerprint"]


def register_auto_classes() -> None:
    """Let plain `AutoModelForCausalLM.from_pretrained` load headstart-architecture folders in this process."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from headstart.model.hf_remote import HeadstartConfig, HeadstartForCausalLM

    try:
        AutoConfig.register("headstart", HeadstartConfig)
        AutoModelForCausalLM.register(HeadstartConfig, HeadstartForCausalLM)
    except ValueError:  # already registered
        pass
