"""Load a `Decoder` from a Hugging Face folder (or a short name), and export one as a folder.

Loading reads config.json and safetensors directly (no transformers model is built), so it
is fast and works the same under transformers 4 and 5: tensors are read one at a time from the
memory-mapped files and converted as they come, so a teacher needs its own size in memory,
never a second copy. Export writes the family's stock architecture when it can hold the model,
else headstart's own (see hf_remote.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import torch
from huggingface_hub import save_torch_state_dict
from safetensors import SafetensorError, safe_open

from headstart.atomic import atomic_dir
from headstart.errors import UsageError
from headstart.model.card import write_card
from headstart.model.decoder import Decoder, DecoderConfig
from headstart.model.families import FAMILIES, exportable_as_hf, family_of

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "tokenizer.model", "added_tokens.json", "chat_template.jinja")
REMOTE_CODE = ("decoder.py", "hf_remote.py")
GENERATION_FILE = "generation_config.json"
SPECIAL_TOKENS = ("bos_token_id", "eos_token_id", "pad_token_id")
PER_LAYER_KEYS = ("layer_types",)  # config lists with an entry per layer (all full attention in headstart's decoder)


def resolve_model_dir(name_or_path: str | Path) -> Path:
    """A folder path, a short name of a shipped or fetched model, or a hub id (when a network exists)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    from headstart.model.registry import known_names, short_name_dir

    found = short_name_dir(str(name_or_path))
    if found is not None:
        return found
    if "/" in str(name_or_path) and not str(name_or_path).startswith((".", "/")):
        return _from_hub(str(name_or_path))
    raise UsageError(f"model {str(name_or_path)!r} does not exist", "give a model folder, a short name "
                     f"({', '.join(known_names())}; `headstart assets` fetches smollm2-135m), or a Hugging Face "
                     "hub id")


def _from_hub(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))
    except Exception as err:  # any hub failure means the same thing to the user
        raise UsageError(f"cannot download {repo_id!r} from the Hugging Face hub ({type(err).__name__})",
                         "check the id and the network, or pass a local model folder") from None


def read_config(model_dir: Path) -> dict:
    file = model_dir / "config.json"
    if not file.is_file():
        raise UsageError(f"{model_dir} is not a model folder (no config.json)",
                         "point to a Hugging Face model folder with config.json and *.safetensors")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise UsageError(f"{file} is not valid JSON ({err.msg}, line {err.lineno})",
                         "re-export or re-download the model") from None


def decoder_config(raw: dict) -> DecoderConfig:
    if raw.get("model_type") == "headstart":
        return DecoderConfig.from_dict(raw["decoder"])
    try:
        return family_of(str(raw.get("model_type"))).read_config(raw)
    except KeyError as err:
        raise UsageError(f"the model's config.json lacks {err.args[0]!r}, which its family needs",
                         "give a complete Hugging Face config.json of that family") from None


class CheckpointTensors(Mapping[str, torch.Tensor]):
    """A checkpoint's tensors, each read when asked for (in `dtype`, or its own when None).

    It remembers which were read, so that a load fails on a tensor no weight map used instead
    of silently dropping it.
    """

    def __init__(self, readers: dict[str, Callable[[], torch.Tensor]], dtype: torch.dtype | None) -> None:
        self._readers, self._dtype, self._read = readers, dtype, set()

    def __getitem__(self, name: str) -> torch.Tensor:
        tensor = self._readers[name]()
        self._read.add(name)
        return tensor if self._dtype is None else tensor.to(self._dtype)

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)

    def unread(self) -> list[str]:
        return [name for name in self._readers if name not in self._read]


def stored_dtype(model_dir: Path) -> torch.dtype:
    """The dtype of a checkpoint's floating-point weights (its first one's): what a model made from it, a
    sub-network or a re-ordered teacher, is written in unless asked otherwise."""
    return next(t.dtype for t in read_weights(model_dir).values() if t.is_floating_point())


def read_weights(model_dir: Path, dtype: torch.dtype | None = None) -> CheckpointTensors:
    """The tensors of a single or sharded safetensors checkpoint, read lazily; pickled pytorch_model.bin folders
    are refused."""
    index = model_dir / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else []
    files = [model_dir / f for f in files] or sorted(model_dir.glob("*.safetensors"))
    if not files:
        if any(model_dir.glob("pytorch_model*.bin")):  # a pickle can run code when loaded: not ours to open
            raise UsageError(f"{model_dir} holds its weights as pytorch_model.bin (a pickle), which headstart does "
                             "not load", "convert it to safetensors once, in place: python -c \"from transformers "
                             f"import AutoModelForCausalLM as M; M.from_pretrained('{model_dir}').save_pretrained("
                             f"'{model_dir}')\" (it writes model.safetensors beside the tokenizer)")
        raise UsageError(f"{model_dir} has no weights (*.safetensors)", "export or download the model's weights")
    readers: dict[str, Callable[[], torch.Tensor]] = {}
    for f in files:
        try:
            handle = safe_open(f, framework="pt")
            readers |= {name: partial(_read_tensor, handle, f, name) for name in handle.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as err:
            _corrupt(f, err)
    return CheckpointTensors(readers, dtype)


def _read_tensor(handle: safe_open, file: Path, name: str) -> torch.Tensor:
    try:
        return handle.get_tensor(name)
    except (SafetensorError, OSError, ValueError) as err:
        _corrupt(file, err)


def _corrupt(file: Path, err: Exception) -> NoReturn:
    raise UsageError(f"{file} is corrupt or truncated ({str(err).splitlines()[0][:80]})",
                     "re-export or re-download the model") from None


def load_model(name_or_path: str | Path, dtype: torch.dtype | None = torch.float32) -> Decoder:
    """A `Decoder` with the weights of a HF folder, in fp32 by default (None: the checkpoint's own dtype).

    Every tensor of the checkpoint must be a weight of the model its config.json describes;
    `model.source_dir` remembers the folder.
    """
    model_dir = resolve_model_dir(name_or_path)
    raw = read_config(model_dir)
    cfg = decoder_config(raw)
    weights = read_weights(model_dir, dtype)
    if raw.get("model_type") == "headstart":
        ours, buffers = {k.removeprefix("model."): v for k, v in weights.items()}, ()
    else:
        family = FAMILIES[cfg.family]
        try:
            ours, buffers = family.to_ours(weights, cfg), family.buffers
        except KeyError as err:
            raise UsageError(f"{model_dir} lacks weight {err.args[0]!r} that its config.json implies",
                             "re-export or re-download the model") from None
    unused = [name for name in weights.unread() if not name.endswith(buffers)]
    if unused:
        raise UsageError(f"{model_dir} holds {len(unused)} tensor(s) that the model of its config.json does not "
                         f"use, the first {unused[0]!r}", "check that config.json belongs to these weights "
                         "(its family, layer count and flags)")
    model = build_model(cfg, ours, dtype)
    model.source_dir = model_dir
    return model


def weights_fingerprint(model: Decoder) -> str:
    """A cheap sha256 over a strided sample of every weight: tells two models of one architecture apart,
    so that a resumed search or training run notices a teacher replaced in the same folder."""
    digest = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        flat = p.detach().reshape(-1)
        digest.update(name.encode())
        digest.update(flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy().tobytes())
    return digest.hexdigest()


def build_model(cfg: DecoderConfig, state: dict[str, torch.Tensor],
                dtype: torch.dtype | None = torch.float32) -> Decoder:
    """A Decoder holding `state` (in `dtype`, or as it is when None), without a random initialisation first."""
    with torch.device("meta"):
        model = Decoder(cfg)
    try:
        model.load_state_dict({k: v if dtype is None else v.to(dtype) for k, v in state.items()}, strict=True,
                              assign=True)
    except RuntimeError as err:
        raise UsageError(f"weights do not fit the config ({_first_mismatch(err)})",
                         "re-export the model; its config.json and weights disagree") from None
    return model.eval()


def _first_mismatch(err: RuntimeError) -> str:
    """torch's first complaint, whole ("size mismatch for x.weight: copying a param with shape ...")."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[1] if len(lines) > 1 else lines[0]).removesuffix(".") if lines else "no detail"


def save_model(model: Decoder, out_dir: str | Path, tokenizer_dir: Path | None = None,
               dtype: torch.dtype | None = None, card: dict[str, Any] | None = None,
               max_shard_size: int | str = "5GB") -> Path:
    """Write a Hugging Face folder that `AutoModelForCausalLM.from_pretrained` loads with the same logits.

    Uniform students that fit their family's stock class are written as that class; others as
    headstart's own architecture with its code alongside (`trust_remote_code=True`). The folder
    `tokenizer_dir` (default: the one the model was loaded from) gives its tokenizer, generation
    config and special-token ids, and where it holds a config of the same architecture, the new
    config is that one with only the widths changed. `card` holds the facts of its model card;
    weights over `max_shard_size` are split into shards with an index.
    """
    cfg = model.config
    state = {k: v.detach().to(dtype or v.dtype).contiguous() for k, v in model.state_dict().items()}
    source = tokenizer_dir or getattr(model, "source_dir", None)
    source = Path(source) if source else None
    stock = exportable_as_hf(cfg)
    weights = FAMILIES[cfg.family].from_ours(state, cfg) if stock else {f"model.{k}": v for k, v in state.items()}
    config = exported_config(cfg, source) | {
        "dtype": str(next(iter(state.values())).dtype).removeprefix("torch."), "headstart_version": _version()}
    with atomic_dir(out_dir) as tmp:
        save_torch_state_dict(weights, tmp, max_shard_size=max_shard_size, metadata={"format": "pt"})
        if not stock:
            for name in REMOTE_CODE:
                shutil.copy(Path(__file__).with_name(name), tmp / name)
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        for name in (*TOKENIZER_FILES, GENERATION_FILE) if source else ():
            if (source / name).is_file():
                shutil.copy(source / name, tmp / name)
        if not stock and source and (tmp / "tokenizer_config.json").is_file():
            _name_the_teachers_tokenizer_class(source, tmp / "tokenizer_config.json")
        if not (tmp / GENERATION_FILE).is_file():
            from transformers import GenerationConfig

            tokens = {k: config[k] for k in SPECIAL_TOKENS if k in config}
            GenerationConfig(**tokens).to_json_file(tmp / GENERATION_FILE)
        write_card(tmp, card or {})
    return Path(out_dir)


def exported_config(cfg: DecoderConfig, source: Path | None) -> dict:
    """config.json of `cfg`: the source folder's config with only what differs changed, and its special tokens.

    What differs is found by writing the source's own config the way `cfg`'s is written: the
    keys whose values disagree are the widths; every other key of the source (rope scaling,
    token ids, anything headstart does not read) stays as it was.
    """
    new = _config_of(cfg)
    base = read_config(source) if source is not None and (source / "config.json").is_file() else {}
    base = {k: v for k, v in base.items() if k not in ("torch_dtype", "transformers_version", "_name_or_path")}
    if base.get("model_type") == new["model_type"]:
        teacher = decoder_config(base)
        if teacher.n_layer != cfg.n_layer:  # one entry per teacher layer: transformers derives them again
            base = {k: v for k, v in base.items() if k not in PER_LAYER_KEYS}
        old = _config_of(teacher)
        config = base | {k: v for k, v in new.items() if k not in base or old.get(k) != v}
    else:
        config = {k: base[k] for k in SPECIAL_TOKENS if base.get(k) is not None} | new
    return _tokenizer_special_tokens(source) | config


def _config_of(cfg: DecoderConfig) -> dict:
    return FAMILIES[cfg.family].hf_config(cfg) if exportable_as_hf(cfg) else remote_code_config(cfg)


def _tokenizer_special_tokens(folder: Path | None) -> dict[str, int]:
    """bos/eos/pad ids of the tokenizer saved in `folder`, for configs that do not state them."""
    if folder is None or not (folder / "tokenizer.json").is_file() or not (folder / "tokenizer_config.json").is_file():
        return {}
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(folder / "tokenizer.json"))
    named = json.loads((folder / "tokenizer_config.json").read_text())
    ids = {}
    for key in SPECIAL_TOKENS:
        token = named.get(key.removesuffix("_id"))
        token = token.get("content") if isinstance(token, dict) else token
        if isinstance(token, str) and vocab.token_to_id(token) is not None:
            ids[key] = vocab.token_to_id(token)
    return ids


def _name_the_teachers_tokenizer_class(source: Path, tokenizer_config: Path) -> None:
    """A remote-code folder's tokenizer_config.json names the class AutoTokenizer gives the teacher.

    transformers 5 picks a tokenizer by the config's `model_type` where it distrusts the class the
    files name (a Qwen2 folder whose files say TokenizersBackend gets Qwen2Tokenizer); a folder of
    headstart's own `model_type` gets the named class, so the name must be the teacher's.
    """
    from transformers import AutoTokenizer

    chosen = type(AutoTokenizer.from_pretrained(source, trust_remote_code=False)).__name__
    named = json.loads(tokenizer_config.read_text())
    if named.get("tokenizer_class") != chosen:
        tokenizer_config.write_text(json.dumps(named | {"tokenizer_class": chosen}, indent=2) + "\n")


def remote_code_config(cfg: DecoderConfig) -> dict:
    return {"architectures": ["HeadstartForCausalLM"], "model_type": "headstart", "decoder": cfg.to_dict(),
            "vocab_size": cfg.vocab_size, "tie_word_embeddings": cfg.tie_embeddings, "hidden_size": cfg.n_embd,
            "num_hidden_layers": cfg.n_layer, "max_position_embeddings": cfg.max_positions,
            "auto_map": {"AutoConfig": "hf_remote.HeadstartConfig",
                         "AutoModelForCausalLM": "hf_remote.HeadstartForCausalLM"}}


def _version() -> str:
    from headstart import __version__

    return __version__
