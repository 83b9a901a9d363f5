"""The settings of every step but training's (headstart.train.config.TrainConfig), as typed configs.

Each is at once the keyword arguments of its `headstart.api` function, its section of a pipeline
recipe and its command's flags. `validate()` checks what needs no file; `check()` adds what can be
checked of the outputs before any work (`headstart run` checks every step before the first).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from headstart.assets.catalog import GROUPS
from headstart.data.shards import SHARD_TOKENS, SPLITS
from headstart.errors import UsageError
from headstart.eval.tasks import TASKS
from headstart.model.decoder import DecoderConfig
from headstart.model.hub import PUSH_HELP, check_repo_id
from headstart.runtime import AUTO_PRECISION_HELP, PRECISIONS
from headstart.search.journal import JOURNAL
from headstart.search.run import COSTS
from headstart.search.strategies import STRATEGIES, SURVIVALS, StrategySettings
from headstart.settings import COUNT, DEVICE_HELP, Config, command_line, setting
from headstart.subnet.counts import param_count
from headstart.subnet.importance import ORDERS
from headstart.subnet.spaces import LAYER_SELECTIONS, SPACES, Budget, SearchSpace, make_space, parse_budget
from headstart.train.config import TrainConfig

DTYPES = ("float32", "bfloat16", "float16")
OBJECTIVES = ("perplexity", "importance", "magnitude")
BACKENDS = ("headstart", "lm-eval")
SCORING_PRECISION_HELP = "fp32, or bf16 autocast (GPU)"
LAYERS_HELP = ("which layers may be kept: the first k, or any k (default: first for "
               f"{' and '.join(name for name, (*_, layers) in SPACES.items() if layers == 'first')}, else subset)")
TOKENIZER_HELP = "tokenizer or model folder, a model's short name (e.g. scale-teacher), or gpt2 / neox / smollm2"
_STRATEGY = StrategySettings()


@dataclass
class AssetsConfig(Config):
    only: list[str] | None = setting(None, "fetch only these groups; none given: all", GROUPS)
    extras: bool = setting(False, "add the extra corpora: fortunes and the Python 3.11 docs")
    cache: str | None = setting(None, "cache folder; none given: $HEADSTART_CACHE, else ~/.cache/headstart")

    def cache_dir(self) -> Path:
        from headstart.assets import cache_dir

        return Path(self.cache).expanduser() if self.cache else cache_dir()

    def check(self) -> None:
        from headstart.assets.cache import check_cache_dir

        super().check()
        check_cache_dir(self.cache_dir())


@dataclass
class PrepareConfig(Config):
    input: list[str] = setting([], "files (.txt, .md, .rst = one document; .jsonl line / .parquet row = one; also "
                               ".txt.gz, .jsonl.gz), folders of them (extensions in any case; hidden files and folders "
                               "skipped), hf:DATASET, or corpus:NAME (a source of the offline corpus: shakespeare, "
                               "kjv, austen, brown, fortunes, python_docs)")
    out: str = setting("", "data folder to write (replaced atomically)")
    tokenizer: str | None = setting(None, TOKENIZER_HELP)
    train_tokenizer: int | None = setting(None, "train a byte-level BPE of this vocabulary size on the train split "
                                          "(saved to OUT/tokenizer/)")
    glob: list[str] | None = setting(None, "in folders, read the files whose name or path below the folder matches "
                                     "one of these (case-insensitive, e.g. '*.tex' 'docs/*'); files of no known type "
                                     "are read as text")
    encoding: str = setting("utf-8", "encoding of the text files (utf-8 drops its byte-order mark); files in folders "
                            "that do not decode are skipped and counted, a file named on --input that does not is an "
                            "error")
    text_field: str = setting("text", "jsonl field / parquet column with the text")
    val_fraction: float | None = setting(None, "fraction of the text (whole documents, seeded hash order) held out; "
                                         "0.05 if not given, or 0 with --val-docs")
    val_docs: list[str] | None = setting(None, "inputs that go to validation whole (globs)")
    seed: int = setting(0, "seed of the validation pick")
    max_tokens: int | None = setting(None, "keep the first documents holding this many tokens (e.g. 2B; both "
                                     "splits), reading no further")
    workers: int | None = setting(None, "tokenize in this many processes (none given: one, its batch encode on "
                                  "every core)")
    shard_tokens: int = setting(SHARD_TOKENS, "tokens per shard file of a split (the last holds the rest)")

    required = ("input", "out")

    def validate(self) -> None:
        super().validate()
        if self.tokenizer is not None and self.train_tokenizer is not None:
            raise UsageError("--tokenizer and --train-tokenizer both given", "keep one of them")

    def check(self) -> None:
        from headstart.atomic import check_out_writable
        from headstart.data.documents import check_input_paths

        super().check()
        check_out_writable(self.out)
        check_input_paths(self.input)

    def command_line(self) -> str:
        """The command as the user could re-run it: the manifest's created_by, which a pipeline's rerun reads back
        (settings.from_command_line) and compares; --workers left out: it is not part of what the data is."""
        return command_line(self, "prepare", leave_out=("workers",))


@dataclass
class ImportanceConfig(Config):
    teacher: str = setting("", "teacher model folder or short name")
    data: str = setting("", "calibration data folder (`headstart prepare`)")
    out: str = setting("", "folder to write importance.json (and teacher/) into, replaced atomically")
    split: str = setting("train", "split to calibrate on (train, so validation stays unseen)", SPLITS)
    tokens: int = setting(65536, "calibration tokens", within=COUNT)
    seq_len: int = setting(512, "window length", within=COUNT)
    batch_size: int = setting(8, "windows per forward pass", within=COUNT)
    write_teacher: bool = setting(False, "also write OUT/teacher: the teacher with units sorted by score (same "
                                  "function), so that first-n slicing keeps the most important units")
    order: str = setting("activation", "which score orders the written teacher", ORDERS)
    device: str = setting("auto", DEVICE_HELP)
    precision: str = setting("fp32", SCORING_PRECISION_HELP, PRECISIONS[1:])

    required = ("teacher", "data", "out")
    out_kind = ("folder of `headstart importance`", lambda p: (p / "importance.json").is_file())


@dataclass
class SearchConfig(Config):
    teacher: str = setting("", "teacher model folder or short name")
    data: str = setting("", "data folder (`headstart prepare`) to score on")
    out: str = setting("", "search folder; an existing one is resumed from its journal")
    budget: str = setting("", "parameters: 50M, 50% of the teacher, or a bin LO:HI")
    space: str = setting("fine-layerwise", "search space", tuple(SPACES))
    strategy: str = setting("evolution", "how to search (oneshot: no search, the importance seed or the first-k "
                            "anchor)", tuple(STRATEGIES))
    evals: int = setting(100, "candidates to evaluate", within=COUNT)
    objective: str = setting("perplexity", "perplexity of the untrained sub-network (the paper's), or a proxy",
                             OBJECTIVES)
    importance: str | None = setting("auto", "scores that seed the search with the sub-network they choose (the "
                                     "best search in bench/results/search-scale.md) and are the proxy of --objective "
                                     "importance: an importance.json of `headstart importance` on this teacher; auto: "
                                     "the teacher's activations on the first tokens of the train split, scored here; "
                                     "none (null): unseeded")
    cost: str = setting("params", "what the Pareto front trades perplexity against", COSTS)
    tokens: int = setting(8192, "validation tokens per candidate, the same for every one", within=COUNT)
    seq_len: int = setting(512, "window length", within=COUNT)
    batch_size: int = setting(8, "windows per forward pass", within=COUNT)
    layers: str | None = setting(None, LAYERS_HELP, LAYER_SELECTIONS)
    multiple: int = setting(8, "embedding and MLP widths are multiples of this", within=COUNT)
    population: int = setting(_STRATEGY.population, "evolution and Pareto: candidates per generation", within=COUNT)
    tournament: int = setting(_STRATEGY.tournament, "parents are the best of this many random members", within=COUNT)
    crossover_prob: float = setting(_STRATEGY.crossover_prob, "chance that a child mixes two parents", within="[0, 1]")
    mutation_prob: float = setting(_STRATEGY.mutation_prob, "chance that a child is mutated", within="[0, 1]")
    survival: str = setting(_STRATEGY.survival, "who survives a generation: the best, or the youngest", SURVIVALS)
    bins: int = setting(_STRATEGY.bins, "stratified: sub-bins of the budget", within=COUNT)
    seed: int = setting(0, "seed of the search")
    device: str = setting("auto", DEVICE_HELP)
    precision: str = setting("auto", AUTO_PRECISION_HELP, PRECISIONS)

    required = ("teacher", "data", "out", "budget")
    out_kind = ("search folder (it has no journal.jsonl)", lambda p: (p / JOURNAL).is_file())

    def __post_init__(self) -> None:
        if self.importance == "none":  # the flag's spelling of null
            self.importance = None

    def validate(self) -> None:
        super().validate()
        if self.objective == "importance" and self.importance is None:
            raise UsageError("--objective importance needs the scores", "pass --importance auto, or an "
                             "importance.json written by `headstart importance`")

    def check(self) -> None:
        super().check()
        self.check_bin()

    def check_bin(self) -> None:
        """That the bin holds a sub-network of the space (a whole-layers space has one size per depth), from the
        teacher's config.json alone: a pipeline refuses it before its first step, not hours later."""
        from headstart.model.checkpoint import decoder_config, read_config, resolve_model_dir

        space, budget = self.space_and_budget(decoder_config(read_config(resolve_model_dir(self.teacher))))
        space.sample(random.Random(self.seed), budget)

    def space_and_budget(self, teacher: DecoderConfig) -> tuple[SearchSpace, Budget]:
        """The search space over the teacher's shape and the parameter bin of --budget."""
        space = make_space(self.space, teacher, layers=self.layers, multiple=self.multiple)
        return space, parse_budget(self.budget, param_count(teacher))

    def strategy_settings(self) -> StrategySettings:
        return StrategySettings(**{name: getattr(self, name) for name in StrategySettings.__dataclass_fields__})


def _like_train(name: str, help: str | None = None) -> Any:
    """A SelectConfig field that each candidate's TrainConfig gets: its default and help, as `headstart train`
    has them (SelectConfig.TRAINING lists them)."""
    like = TrainConfig.__dataclass_fields__[name]
    return field(default=like.default, metadata=like.metadata | {"help": help or like.metadata["help"], "train": True})


@dataclass
class SelectConfig(Config):
    search: str = setting("", "a finished `headstart search` folder, its candidates ranked by untrained perplexity")
    teacher: str = setting("", "the search's teacher (folder or short name)")
    data: str = setting("", "prepared data to train and validate the candidates on")
    out: str = setting("", "selection folder: candidates/, best.json (the winner: extract --spec reads it), "
                       "halving.json, halving.md; an existing one is resumed")
    candidates: int = setting(8, "how many of the search's best, by untrained perplexity, enter the first rung",
                              within=COUNT)
    tokens: int = setting(100_000, "training tokens of each candidate in the first rung", within=COUNT)
    eta: int = setting(2, "each rung keeps the best 1/eta by trained perplexity and trains them eta times longer",
                       within="[2, inf)")
    kd: str | None = setting("forward_kl", "KD loss of the candidates' training (null in a recipe: cross-entropy)")
    equal_compute: bool = setting(False, "also train the search's best for all the tokens the selection spent, and "
                                  "say which is better: the evidence, at twice the cost")
    lr: float = _like_train("lr")
    seq_len: int = _like_train("seq_len")
    batch_size: int = _like_train("batch_size")
    micro_batch_size: int = _like_train("micro_batch_size")
    eval_tokens: int = _like_train("eval_tokens", "validation tokens each candidate is ranked on")
    seed: int = _like_train("seed", "seed of the candidates' data order")
    device: str = _like_train("device")
    precision: str = _like_train("precision")

    required = ("search", "teacher", "data", "out")
    out_kind = ("selection folder (it has no candidates/)", lambda p: (p / "candidates").is_dir())
    TRAINING: ClassVar[tuple[str, ...]]  # the fields passed on to each candidate's TrainConfig (_like_train's)

    def validate(self) -> None:
        super().validate()
        TrainConfig(**self.training(), student="s", data="d", out="o", tokens=self.tokens, kd=self.kd,
                    teacher=self.teacher if self.kd else None).validate()

    def check(self) -> None:
        import os

        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise UsageError("select trains its candidates one process at a time, not under torchrun",
                             "run it (or the pipeline with a select section) without torchrun")
        super().check()

    def training(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.TRAINING}


SelectConfig.TRAINING = tuple(f.name for f in fields(SelectConfig) if f.metadata.get("train"))


SPEC_HELP = """sub-network spec (JSON), or a JSON file holding one under "spec". A count keeps the first n, a list
names indices, widths at the top apply to every kept layer: {"embd": 384, "layers": 20, "heads": 6, "kv": 2,
"mlp": 768}. Per layer: {"embd": [...], "layers": [{"layer": 0, "heads": [0, 1, 3, 4], "kv": [0, 1], "mlp": [...]},
...]}. Query head h is in key/value group h // (heads/groups); every kept group keeps the same number of heads."""
MODEL_OUT_HELP = ("Hugging Face folder to write; an earlier headstart model there is replaced atomically, any other "
                  "folder only with --overwrite")
OVERWRITE_HELP = "replace an existing --out folder that headstart did not write (never a file)"


def is_headstart_model(folder: Path) -> bool:
    """A model folder headstart wrote (its config.json says so): what extract and init may replace unasked."""
    try:
        return "headstart_version" in json.loads((folder / "config.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


MODEL_OUT = ("model folder headstart wrote", is_headstart_model)


@dataclass
class ExtractConfig(Config):
    teacher: str = setting("", "teacher model folder or short name")
    spec: str = setting("", SPEC_HELP)
    out: str = setting("", MODEL_OUT_HELP)
    overwrite: bool = setting(False, OVERWRITE_HELP)
    dtype: str | None = setting(None, "weight dtype of the folder (default: the teacher's)", DTYPES)
    push_to_hub: str | None = setting(None, PUSH_HELP)

    required = ("teacher", "spec", "out")
    out_kind = MODEL_OUT

    def check(self) -> None:
        super().check()
        check_repo_id(self.push_to_hub)


@dataclass
class EvalConfig(Config):
    model: str = setting("", "model folder or short name (e.g. smollm2-135m)")
    data: str | None = setting(None, "data folder written by `headstart prepare`: loss and perplexity on it")
    split: str = setting("validation", "which split to score", SPLITS)
    tokens: int = setting(65536, "how many tokens to score", within=COUNT)
    seq_len: int = setting(512, "window length", within=COUNT)
    tasks: list[str] | None = setting(None, f"zero-shot multiple-choice tasks ({', '.join(TASKS)}); needs "
                                      "`headstart assets --only evalsets`")
    limit: int = setting(500, "items per task, the first ones (0: all)", within="[0, inf)")
    backend: str = setting("headstart", "who scores --tasks: headstart, or lm-evaluation-harness itself (pip install "
                           "lm-eval), both on the offline task files", BACKENDS)
    batch_size: int = setting(8, "windows or items per forward pass", within=COUNT)
    device: str = setting("auto", DEVICE_HELP)
    precision: str = setting("fp32", SCORING_PRECISION_HELP, PRECISIONS[1:])

    required = ("model",)

    def validate(self) -> None:
        from headstart.eval.tasks import check_task_name

        super().validate()
        if not self.data and not self.tasks:
            raise UsageError("nothing to evaluate", "give --data (perplexity) and/or --tasks (downstream accuracy)")
        for task in self.tasks or []:
            check_task_name(task)
        if self.backend == "lm-eval":
            from headstart.eval.harness import check_lm_eval_tasks

            check_lm_eval_tasks(self.tasks or [])


@dataclass
class SpaceConfig(Config):
    teacher: str = setting("", "teacher model folder or short name")
    space: str = setting("", "which search space", tuple(SPACES))
    budget: str | None = setting(None, "parameter bin: 50M or 50% (of the teacher) +- 2%, or LO:HI (default: no bin)")
    layers: str | None = setting(None, LAYERS_HELP, LAYER_SELECTIONS)
    multiple: int = setting(8, "embedding and MLP widths are multiples of it", within=COUNT)
    samples: int = setting(5, "how many samples to show", within=COUNT)
    seed: int = setting(0, "seed of the samples")
    seq_len: int = setting(2048, "sequence length for FLOPs per token", within=COUNT)

    required = ("teacher", "space")


@dataclass
class InitConfig(Config):
    architecture: str = setting("", "a Hugging Face config.json (GPT-NeoX, Llama-family or GPT-2) giving the "
                                "architecture")
    tokenizer: str = setting("", TOKENIZER_HELP)
    out: str = setting("", MODEL_OUT_HELP)
    overwrite: bool = setting(False, OVERWRITE_HELP)
    seed: int = setting(0, "seed of the initialisation")

    required = ("architecture", "tokenizer", "out")
    out_kind = MODEL_OUT
