"""`headstart run`: the whole pipeline from one recipe file, every step resumable.

A recipe names the teacher, an output folder and one section per step. A section holds fields of
that step's config (headstart.configs; training's is TrainConfig), which are also the flags of its
own command (`seq_len: 256` is `--seq-len 256`); `headstart run --config R --train.lr 1e-3` sets one
for this run. The pipeline fills in the fields that join the steps; a recipe that sets one is refused.

    step        writes (below `out`)   on a second run
    prepare     data/                  skipped if data/ was prepared by the same command with
                                       the same tokenizer (or name a prepared folder with `data:`)
    importance  importance/            its scores seed the search (the best search of the study and of
                                       bench/results/search-scale.md); `importance: false` skips it
    search      search/                resumed from its journal
    select      select/                optional (only with its section): the student chosen among the search's
                                       best by short trainings like its own (successive halving), not by
                                       untrained perplexity; resumed
    extract     student/               kept when unchanged, rewritten when the spec it reads is (cheap)
    train       train/                 resumed from its last checkpoint; distils with forward_kl unless
                                       its section sets kd (`kd: null`: cross-entropy alone)
    eval        eval.json, report.md,  teacher and student on the same held-out windows as training's
                training_curve.png     validation (train's eval_tokens and seq_len), the student's curve
    baselines   baselines/ARM/         optional: arms trained like the student for comparison (see
                                       headstart.compare.arms); the report races them to the from-scratch
                                       arm's final perplexity in tokens and FLOPs (comparison_*.png)
    variants    variants/NAME/         optional: the student's sub-network trained with other settings, as arms
                                       too; with `stop_at_reference: true` the from-scratch arm trains first
                                       and every other run stops at its final perplexity (marked (stopped))

Each finished step records its settings in steps/; a second run keeps every step whose settings and
inputs are unchanged (with nothing changed it only prints the report), reruns the ones that changed
and those downstream of them, and says which and why. recipe.yaml is the resolved recipe of the last run.
A folder moved or copied elsewhere is the same run there: its records' paths below the old `out` are
read below the new one (and the report is made again with the new paths).
A second run of a folder whose search was made with other weights of the teacher (one retrained into
the same folder) is refused before any step.

Under torchrun, search and train use every rank; the other steps run on rank 0 while the rest wait
for it in a group of their own, whose timeout (two days) outlasts preparing a large corpus.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from headstart import api
from headstart.atomic import check_out_replaceable, write_json_atomic, write_text_atomic
from headstart.compare.arms import (
    REFERENCE,
    REPORT_ORDER,
    ArmPlan,
    arm_train_section,
    best_rate,
    final_perplexity,
    full_runs,
    parse_arms,
    short_sweep,
    sweep_folder,
)
from headstart.compare.report import (
    ArmRuns,
    compare,
    comparison_table,
    plot_comparison,
    race_to_teacher,
    sweep_lines,
    teacher_race_section,
)
from headstart.configs import (
    EvalConfig,
    ExtractConfig,
    ImportanceConfig,
    PrepareConfig,
    SearchConfig,
    SelectConfig,
)
from headstart.errors import UsageError
from headstart.model.hub import check_repo_id
from headstart.search.journal import JOURNAL, read_header
from headstart.settings import closest, from_command_line, make, parse_fields, read_mapping
from headstart.train.config import TrainConfig
from headstart.train.distributed import Ranks, close_ranks, init_ranks, wait_for_main, waiting_group

STEPS = ("prepare", "importance", "search", "select", "extract", "train", "eval")
SECTIONS = {step: api.COMMANDS[step][0] for step in STEPS}  # each step's config
DISTRIBUTED_STEPS = ("search", "train")
RESUMING = ("search", "select", "train")  # steps that resume their folder (and refuse one of other settings)
# the fields of each step that the pipeline sets, joining it to the steps before it
JOINING = {
    "prepare": ("out",),
    "importance": ("teacher", "data", "out"),
    "search": ("teacher", "data", "out", "importance"),
    "select": ("search", "teacher", "data", "out", "kd", *SelectConfig.TRAINING),  # its candidates train like train
    "extract": ("teacher", "spec", "out"),
    "train": ("student", "data", "out", "teacher"),
    "eval": ("model", "data", "tokens", "seq_len"),  # the windows of training's validation
}
# joining fields that name what a step reads
INPUTS = ("teacher", "data", "importance", "search", "spec", "student", "model")
TOP = ("out", "teacher", "data", "baselines", "variants", "stop_at_reference")
STUDENT_KD = "forward_kl"  # the student's KD loss where train.kd is not given (`kd: null` is CE): kd-losses' best
RECIPE_HELP = "a YAML or JSON file: out, teacher, and a section per step (see `headstart run --help`)"


@dataclass(frozen=True)
class PipelineConfig:
    """A checked recipe: each present section a typed config whose joining fields the plan fills in."""

    out: Path
    teacher: str
    data: Path | None = None  # a prepared folder to use instead of the prepare step
    prepare: PrepareConfig | None = None
    importance: ImportanceConfig | None = field(default_factory=ImportanceConfig)  # None: `importance: false`
    search: SearchConfig = field(default_factory=SearchConfig)
    select: SelectConfig | None = None  # optional step
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    arms: tuple[ArmPlan, ...] = ()  # baselines and variants, trained beside the student (compare.arms)
    stop_at_reference: bool = False  # every other run stops once it reaches the from-scratch arm's final perplexity

    @property
    def data_dir(self) -> Path:
        return self.data if self.data is not None else self.out / "data"

    def section(self, step: str) -> dict[str, Any]:
        """A step's settings as a recipe section: its fields but those the pipeline joins."""
        cfg = getattr(self, step)
        return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in JOINING[step]} if cfg else {}

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe: loading it gives this config again."""
        top = {"out": str(self.out), "teacher": self.teacher, "data": str(self.data) if self.data else None}
        arms = {kind: {a.name: a.overrides for a in self.arms if a.folder.startswith(kind + "/")}
                for kind in ("baselines", "variants")}
        steps = {step: self.section(step) if getattr(self, step) else False for step in STEPS
                 if getattr(self, step) is not None or step == "importance"}  # importance: false, as asked
        return {**top, **steps, **arms, "stop_at_reference": self.stop_at_reference}


def _section(raw: dict[str, Any], step: str, where: str) -> dict[str, Any]:
    section = raw.get(step) or {}  # `importance: false` too
    if not isinstance(section, dict):
        off = " (or `importance: false` to skip it)" if step == "importance" else ""
        raise UsageError(f"{where}: section {step} is not a mapping", f"write `field: value` lines under it{off}")
    section = {str(k).replace("-", "_"): v for k, v in section.items()}
    taken = sorted(k for k in section if k in JOINING[step])
    if taken:
        raise UsageError(f"{where}: {step}.{taken[0]} is set by the pipeline",
                         f"remove it; the pipeline joins {step} to the steps before it")
    return parse_fields(SECTIONS[step], section, f"{where}: {step}")


def load_pipeline(source: str | Path | dict[str, Any] | None, overrides: dict[str, Any] | None = None,
                  ) -> PipelineConfig:
    """Read and check a pipeline recipe (a file or a mapping); `overrides` maps a dotted key (`out`, `train.lr`,
    `baselines.random.lr`) to a value, checked and parsed as the recipe's are."""
    where = f"recipe {source}" if not isinstance(source, dict) else "recipe"
    raw = dict(source) if isinstance(source, dict) else read_mapping(source, RECIPE_HELP) if source else {}
    for key, value in (overrides or {}).items():
        *path, name = key.split(".")
        node = raw
        for part in path:  # `baselines: [random]` is `baselines: {random: {}}`
            below = node.get(part)
            below = dict.fromkeys(below) if isinstance(below, list) else below if isinstance(below, dict) else {}
            node[part] = node = dict(below)
        node[name] = value
    unknown = sorted(set(raw) - {*TOP, *STEPS})
    if unknown:
        raise UsageError(f"{where} has unknown keys {', '.join(unknown)}", f"{closest(unknown[0], [*TOP, *STEPS])}use "
                         f"{', '.join(TOP)} and the step sections {', '.join(STEPS)}")
    for key in ("out", "teacher", "data"):
        if not raw.get(key) and key != "data":
            raise UsageError(f"{where} names no {key}", f"add `{key}: ...` to it")
        if raw.get(key) is not None and not isinstance(raw[key], str):  # `out: 5`, `teacher: [a, b]`
            raise UsageError(f"{where}: {key} is not one folder or name", f"give one {key} as text, quoted if it "
                             f"reads as a number: `{key}: '5'`")
    sections = {step: _section(raw, step, where) for step in STEPS}
    if raw.get("data") and raw.get("prepare"):
        raise UsageError(f"{where} has both `data:` and a prepare section", "keep one of them")
    if not raw.get("data") and not sections["prepare"].get("input"):
        raise UsageError(f"{where} has no data", "add `data: PREPARED_FOLDER` or prepare.input")
    if not sections["search"].get("budget"):
        raise UsageError(f"{where} gives the search no budget", "add `budget: 25%` (or 50M) under search")
    if sections["train"].get("tokens") is None:
        raise UsageError(f"{where} gives training no token budget", "add `tokens: 10M` under train")
    sections["train"].setdefault("kd", STUDENT_KD)
    train = dataclasses.asdict(TrainConfig(**sections["train"]))
    arms = parse_arms(raw.get("baselines"), raw.get("variants"), train, where)
    stop = raw.get("stop_at_reference", False)
    if not isinstance(stop, bool) or (stop and not any(arm.name == REFERENCE for arm in arms)):
        raise UsageError(f"{where}: stop_at_reference needs true or false, and a `{REFERENCE}` baseline",
                         f"add `{REFERENCE}: {{}}` under baselines, or drop stop_at_reference")
    optional = ("prepare", "select")  # absent: None
    configs = {step: SECTIONS[step](**sections[step]) if raw.get(step) or step not in optional else None
               for step in STEPS}
    if raw.get("importance") is False:  # an unseeded search, as asked
        configs["importance"] = None
    return PipelineConfig(Path(raw["out"]), str(raw["teacher"]), Path(raw["data"]) if raw.get("data") else None,
                          arms=tuple(arms), stop_at_reference=stop, **configs)


@dataclass(frozen=True)
class Step:
    name: str  # what the pipeline calls it: the command, or `ARM:command` for a baseline arm's steps
    command: str  # the headstart command that runs it
    config: Any  # its full config, joined to the steps before it
    key: str = ""  # unique among the steps: its record's name (the two evals are eval:teacher, eval:student)
    pick_lr: tuple[tuple[str, Path], ...] = ()  # train at the best of these (rate, sweep run) once they ran
    stop_at: tuple[Path, ...] = ()  # stop at the best final perplexity of these runs (the reference arm's)

    @property
    def record(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.key or self.name)

    @property
    def decided_by(self) -> list[Path]:
        """The runs before it whose results set some of its settings (its rate, its target)."""
        return [folder for _, folder in self.pick_lr] + list(self.stop_at)


def plan(recipe: PipelineConfig) -> list[Step]:
    """The steps in order: the student's, each baseline arm's, then eval (teacher and student)."""
    out, teacher, data = recipe.out, recipe.teacher, str(recipe.data_dir)
    join = dataclasses.replace
    steps: list[Step] = []
    if recipe.data is None:
        prepare = recipe.prepare
        tokenizer = prepare.tokenizer if prepare.tokenizer or prepare.train_tokenizer else teacher
        steps.append(Step("prepare", "prepare", join(prepare, tokenizer=tokenizer, out=data)))
    importance_json = str(out / "importance" / "importance.json")
    if recipe.importance or any(arm.arm.strategy == "oneshot" for arm in recipe.arms):
        steps.append(Step("importance", "importance", join(recipe.importance or ImportanceConfig(), teacher=teacher,
                                                           data=data, out=str(out / "importance"))))
    seeded = importance_json if recipe.importance else None

    def search_and_extract(where: Path, prefix: str, select: SelectConfig | None = None, **changes: Any) -> None:
        joined = {"teacher": teacher, "data": data, "out": str(where / "search"), "importance": seeded}
        steps.append(Step(prefix + "search", "search", join(recipe.search, **joined | changes)))
        chosen = where / "search"
        if select is not None:  # trained like the student: its settings, KD loss and validation windows
            like_train = {name: getattr(recipe.train, name) for name in ("kd", *SelectConfig.TRAINING)}
            chosen = where / "select"
            steps.append(Step(prefix + "select", "select", join(select, search=str(where / "search"), teacher=teacher,
                                                                data=data, out=str(chosen), **like_train)))
        pushed = recipe.extract.push_to_hub if not prefix else None  # only the student's own sub-network
        steps.append(Step(prefix + "extract", "extract", join(recipe.extract, teacher=teacher,
                                                              spec=str(chosen / "best.json"),
                                                              out=str(where / "student"), push_to_hub=pushed)))

    def train(name: str, student: Path, run_dir: Path, section: dict[str, Any],
              pick_lr: tuple[tuple[str, Path], ...] = (), stop_at: tuple[Path, ...] = ()) -> None:
        joined = {"student": str(student), "data": data, "out": str(run_dir),
                  "teacher": teacher if section.get("kd") else None,
                  "push_to_hub": None}  # the student is pushed once evaluated (_push_student); arms never
        steps.append(Step(name, "train", make(TrainConfig, section | joined, f"recipe: {name}"),
                          pick_lr=pick_lr, stop_at=stop_at))

    def arm_steps(arm: ArmPlan, stop_at: tuple[Path, ...]) -> None:
        where, student = out / arm.folder, out / "student"
        if arm.arm.strategy is not None:
            importance = importance_json if arm.arm.strategy == "oneshot" else seeded
            search_and_extract(where, f"{arm.name}:", strategy=arm.arm.strategy, importance=importance)
            student = where / "student"
        lrs, short = arm.overrides["lr"], arm.overrides.get("sweep_tokens")
        if short is not None:  # the rates at a short budget, then the best at the full one
            sweep = tuple(short_sweep(where, lrs))
            for lr, (_, folder) in zip(lrs, sweep, strict=True):
                section = arm_train_section(recipe.section("train"), arm.arm, arm.overrides, lr)
                train(f"{arm.name}:sweep lr={lr}", student, folder, {**section, "tokens": short})
            train(f"{arm.name}:train", student, where / "train",
                  arm_train_section(recipe.section("train"), arm.arm, arm.overrides, lrs[0]), sweep, stop_at)
            return
        for lr in lrs:
            section = arm_train_section(recipe.section("train"), arm.arm, arm.overrides, lr)
            train(f"{arm.name}:train" + (f" lr={lr}" if len(lrs) > 1 else ""), student,
                  where / sweep_folder(lrs, lr), section, stop_at=stop_at)

    search_and_extract(out, "", recipe.select)
    # racing: the from-scratch arm first, then every other run stops at its final perplexity
    reference = next((a for a in recipe.arms if a.name == REFERENCE), None) if recipe.stop_at_reference else None
    stop_at: tuple[Path, ...] = ()
    if reference is not None:
        arm_steps(reference, ())
        stop_at = tuple(full_runs(out / reference.folder, reference.overrides))
    train("train", out / "student", out / "train", recipe.section("train"), stop_at=stop_at)
    for arm in recipe.arms:
        if arm is not reference:
            arm_steps(arm, stop_at)
    windows = {"data": data, "tokens": recipe.train.eval_tokens, "seq_len": recipe.train.seq_len}
    for who, model in (("teacher", teacher), ("student", str(out / "train" / "final"))):
        steps.append(Step("eval", "eval", join(recipe.eval, model=model, **windows), key=f"eval:{who}"))
    return steps


def _resolved(ranks: Ranks, step: Step) -> Any:
    """The step's config with the settings the runs before it decide: a swept rate's best, the race's target."""
    cfg = step.config
    if step.pick_lr:
        lr = best_rate(list(step.pick_lr))
        cfg = dataclasses.replace(cfg, lr=float(lr))
        _say(ranks, f"{step.name}: learning rate {lr}, the best of its sweep")
    if step.stop_at:
        target = min(final_perplexity(run) for run in step.stop_at)
        cfg = dataclasses.replace(cfg, stop_below=target)
        _say(ranks, f"{step.name}: stops at perplexity {target:.2f}, the from-scratch arm's final one")
    return cfg


def _moved_from(recipe: PipelineConfig) -> str | None:
    """Where the folder's last run had it (its recipe.yaml's out), where that is not where it is now."""
    last = _read_record(recipe.out / "recipe.yaml", yaml.safe_load)
    old = last.get("out") if isinstance(last, dict) else None
    return str(old) if old and Path(str(old)) != recipe.out else None


def _relocated(value: Any, old: str | None, new: Path) -> Any:
    """`value` (a record, a config as a dict) with each path below `old` put below `new` instead."""
    if old is None:
        return value
    if isinstance(value, dict):
        return {k: _relocated(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocated(v, old, new) for v in value]
    if isinstance(value, str) and Path(value).is_relative_to(old):
        return str(new / Path(value).relative_to(old))
    return value


def _already_prepared(cfg: PrepareConfig) -> bool:
    """The same command, wherever its folder is now (moved with its run), and the tokenizer it names unchanged
    (a teacher replaced in its folder re-prepares)."""
    manifest = _read_record(Path(cfg.out) / "manifest.json")
    try:  # the manifest's command as a config: the words of an earlier version's line compare by what they set
        made_by = from_command_line(PrepareConfig, manifest["created_by"]) if manifest else None
    except (UsageError, KeyError, TypeError):
        return False
    if made_by is None or dataclasses.replace(made_by, workers=cfg.workers, out=cfg.out) != cfg:
        return False
    if cfg.tokenizer is None:  # trained by the command itself
        return True
    from headstart.data import load_tokenizer, tokenizer_fingerprint

    return manifest["tokenizer"]["fingerprint"] == tokenizer_fingerprint(load_tokenizer(cfg.tokenizer))


def _check_same_teacher(recipe: PipelineConfig) -> None:
    """Refuse, before any step, to go on with a run whose teacher has since been replaced in its folder:
    its search journal records the weights it searched (checked again by the search itself)."""
    header = read_header(recipe.out / "search" / JOURNAL)
    if header is None or "teacher_weights" not in header:
        return
    from headstart.model import load_model, weights_fingerprint

    if header["teacher_weights"] != weights_fingerprint(load_model(recipe.teacher)):
        raise UsageError(f"{recipe.out} holds a run of another teacher: the weights of {recipe.teacher} have "
                         "changed since its search", f"give a new --out, or delete {recipe.out} to start over")


def _read_record(path: Path, parse: Callable[[str], Any] = json.loads) -> Any:
    """A JSON record a finished step left (its steps/ record, a manifest; recipe.yaml with yaml's `parse`), or
    None where there is none."""
    try:
        return parse(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):  # json's decode error is a ValueError
        return None


def _relocate_records(recipe: PipelineConfig, moved_from: str | None) -> None:
    """The records of a folder moved from `moved_from`, rewritten with their paths below its new place."""
    for path in (recipe.out / "steps").glob("*.json") if moved_from else ():
        if (record := _read_record(path)) is not None:
            write_json_atomic(path, _relocated(record, moved_from, recipe.out))


def _record_file(recipe: PipelineConfig, step: Step) -> Path:
    return recipe.out / "steps" / f"{step.record}.json"


def _changes(recorded: dict[str, Any], config: Any) -> list[str]:
    """The settings of `config` that differ from a step's record. A field the record lacks (one added to
    headstart after the run) counts as unchanged while it keeps its default: upgrading reruns nothing."""
    defaults = {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                for f in dataclasses.fields(config)}
    was = {**defaults, **recorded}
    return [f"{k} {was.get(k)!r} -> {v!r}" for k, v in dataclasses.asdict(config).items() if was.get(k) != v]


def _decide(recipe: PipelineConfig, steps: list[Step], moved_from: str | None = None,
            ) -> dict[str, tuple[dict[str, Any] | None, str]]:
    """Each step's kept result (None: run it) and why: a step is kept when it finished with the same settings
    and nothing it reads was rerun; prepare, when data/ holds its preparation already. The records of a folder
    `moved_from` elsewhere are read with their paths below it put below its new place."""
    decisions: dict[str, tuple[dict[str, Any] | None, str]] = {}
    rerun: list[Path] = []
    for step in steps:
        cfg = dataclasses.asdict(step.config)
        record = _relocated(_read_record(_record_file(recipe, step)), moved_from, recipe.out)
        reads = [Path(cfg[name]) for name in INPUTS if name in JOINING[step.command] and cfg.get(name)]
        reads += step.decided_by
        upstream = next((p for p in reads for done in rerun if p == done or done in p.parents), None)
        out = Path(cfg["out"]) if cfg.get("out") else None
        if step.command == "prepare":
            done = _already_prepared(step.config)
            kept = (record or {}).get("result", {}) if done else None
            why = f"{out} holds this preparation already; skipped" if done else "preparing"
        elif record is None:
            kept, why = None, "no finished run of it yet"
        elif changes := _changes(record["config"], step.config):
            kept, why = None, f"rerunning: changed {'; '.join(changes)}"
        elif upstream is not None:
            kept, why = None, f"rerunning: it reads {upstream}, made again by this run"
        elif out is not None and not out.exists():
            kept, why = None, f"rerunning: {out} is gone"
        else:
            kept, why = record["result"], "unchanged since it finished; kept"
        if kept is None and out is not None:
            rerun.append(out)
            if record is not None and step.command in RESUMING and out.exists():
                why += f"; the run it replaces moved to {_superseded(recipe, out)}"
        decisions[step.key or step.name] = (kept, why)
    return decisions


def _superseded(recipe: PipelineConfig, out: Path) -> Path:
    """Where a finished search or training run goes when its step reruns afresh (nothing is deleted)."""
    return recipe.out / "superseded" / "_".join(out.relative_to(recipe.out).parts)


def _move_superseded(recipe: PipelineConfig, steps: list[Step], decisions: dict[str, Any]) -> None:
    """A search or training run that reruns with other settings or inputs would be refused by its own journal
    or checkpoint (or, worse, resumed from another student's): it starts afresh, its old run kept aside."""
    for step in steps:
        kept, why = decisions[step.key or step.name]
        if kept is None and "moved to" in why:
            target = _superseded(recipe, Path(step.config.out))
            if target.exists():
                target = target.with_name(f"{target.name}-{time.strftime('%Y%m%dT%H%M%S')}")
            target.parent.mkdir(parents=True, exist_ok=True)
            Path(step.config.out).rename(target)


def _say(ranks: Ranks, message: str) -> None:
    if ranks.is_main:
        print(f"headstart run: {message}", flush=True)


def check_pipeline(recipe: PipelineConfig) -> list[Step]:
    """The planned steps, each checked (every value and output) before hours of the steps before it; OUT
    itself is new, empty, or an earlier `headstart run` folder."""
    check_out_replaceable(recipe.out, "`headstart run` folder (it has no recipe.yaml)",
                          lambda p: (p / "recipe.yaml").is_file())
    steps = plan(recipe)
    for step in steps:
        step.config.check()
    check_repo_id(recipe.train.push_to_hub)  # the student's, pushed at the end (_push_student)
    _check_same_teacher(recipe)
    return steps


def run_pipeline(recipe: PipelineConfig) -> dict[str, Any]:
    """Run every step in order that is not kept from a finished run; returns each step's summary and the
    final comparison."""
    steps = check_pipeline(recipe)
    # decided before the ranks meet, so that every rank sees the folder before rank 0 writes to it
    moved_from = _moved_from(recipe)
    decisions = _decide(recipe, steps, moved_from)
    ranks = init_ranks()
    summaries: dict[str, Any] = {}
    ran = []
    try:
        if ranks.is_main:
            _relocate_records(recipe, moved_from)
            write_text_atomic(recipe.out / "recipe.yaml", yaml.safe_dump(recipe.to_dict(), sort_keys=False))
        waiting = waiting_group(ranks)
        if ranks.is_main:
            _move_superseded(recipe, steps, decisions)
        wait_for_main(ranks, waiting)
        for step in steps:
            kept, why = decisions[step.key or step.name]
            _say(ranks, f"{step.name}: {why}" if kept is not None else f"{step.name} ... ({why})")
            summary = kept
            if kept is None:
                ran.append(step.key or step.name)
                if step.command in DISTRIBUTED_STEPS or ranks.is_main:
                    function = api.COMMANDS[step.command][1]
                    cfg = _resolved(ranks, step)
                    result = function(cfg, resume=True) if step.command == "train" else function(cfg)
                    _say(ranks, result.describe())
                    summary = result.to_dict()
                    if ranks.is_main:  # the planned config: what a rerun's plan is compared with
                        write_json_atomic(_record_file(recipe, step), {"config": dataclasses.asdict(step.config),
                                                                        "result": summary})
                if step.command not in DISTRIBUTED_STEPS:
                    wait_for_main(ranks, waiting)
            if step.command == "eval":
                summaries.setdefault("eval", []).append(summary)
            else:
                summaries[step.name] = summary
    finally:
        close_ranks(ranks)
    if not ranks.is_main:
        return {}
    if not ran and moved_from is None and (recipe.out / "eval.json").is_file():
        result = json.loads((recipe.out / "eval.json").read_text())
        _say(ranks, f"nothing changed since the last run; its report is {recipe.out / 'report.md'}")
        _print_headline(recipe, result)
    else:
        result = _report(recipe, summaries)
    if recipe.train.push_to_hub:  # last: a push that fails leaves the report written
        result["push"] = _push_student(recipe, retrained="eval:student" in ran)
    return result


def _push_student(recipe: PipelineConfig, retrained: bool) -> dict[str, Any]:
    """train.push_to_hub: the trained student, pushed after its evaluation put the numbers on its card; again
    only when it was evaluated again or the repo changed (steps/push.json records the last push)."""
    record = recipe.out / "steps" / "push.json"
    repo, folder = recipe.train.push_to_hub, recipe.out / "train" / "final"
    last = _read_record(record)
    if not retrained and last is not None and last["repo"] == repo:
        print(f"headstart run: push: {folder} is on {repo} as evaluated; kept", flush=True)
        return last
    from headstart.model.hub import push_to_hub

    pushed = {"repo": repo, "url": push_to_hub(folder, repo)}
    print(f"headstart run: pushed {folder} to {pushed['url']}", flush=True)
    write_json_atomic(record, pushed)
    return pushed


def _arm_runs(recipe: PipelineConfig, summaries: dict[str, Any]) -> list[ArmRuns]:
    """The student and each baseline arm as trained, in the order the report shows them."""
    student_label = "sub-network + KD (the student)" if recipe.train.kd else "sub-network (the student)"
    student_params = summaries["extract"]["params"]
    selection = (summaries.get("select") or {}).get("compute")  # charged to the student it chose
    if selection:
        student_label += f", its selection's {selection['tokens']:,} tokens counted"
    student = ArmRuns("student", student_label, student_params, {str(recipe.train.lr): recipe.out / "train"},
                      spent_before=(selection["tokens"], selection["flops"]) if selection else (0, 0.0))
    runs = {"student": student}
    for plan in recipe.arms:
        params = summaries[f"{plan.name}:extract"]["params"] if plan.arm.strategy else student_params
        lrs, where, short = plan.overrides["lr"], recipe.out / plan.folder, plan.overrides.get("sweep_tokens")
        if short is not None:
            sweep = short_sweep(where, lrs)
            finals = {lr: final_perplexity(folder) for lr, folder in sweep}
            runs[plan.name] = ArmRuns(plan.name, plan.arm.label, params, {best_rate(sweep): where / "train"},
                                      finals, short)
        else:
            runs[plan.name] = ArmRuns(plan.name, plan.arm.label, params,
                                      dict(zip(map(str, lrs), full_runs(where, plan.overrides), strict=True)))
    order = [*REPORT_ORDER, *(plan.name for plan in recipe.arms if plan.name not in REPORT_ORDER)]
    return [runs[name] for name in order if name in runs]


def _report(recipe: PipelineConfig, summaries: dict[str, Any]) -> dict[str, Any]:
    teacher_eval, student_eval = summaries["eval"]
    chosen = summaries["select"]["winner"] if "select" in summaries else None  # else the search's best
    untrained = chosen["untrained_perplexity"] if chosen else summaries["search"]["best"].get("perplexity")
    arms = _arm_runs(recipe, summaries)
    comparison = compare(arms, REFERENCE)
    student = comparison["arms"]["student"]
    result = {
        "out": str(recipe.out),
        "teacher": {"model": recipe.teacher, "params": summaries["extract"]["teacher_params"],
                    "perplexity": teacher_eval["perplexity"]},
        "subnetwork": {"params": summaries["extract"]["params"],
                       "perplexity_untrained": student["perplexity_untrained"],
                       "search_perplexity": untrained, "selected": chosen},
        "student": {"model": student_eval["model"], "tokens": summaries["train"]["tokens"],
                    "perplexity": student_eval["perplexity"]},
        "tokens_scored": student_eval["tokens"],
        "tasks": {task: {"teacher": teacher_eval["tasks"][task], "student": result}
                  for task, result in student_eval.get("tasks", {}).items()},
        "comparison": comparison if recipe.arms else None,
        "comparison_to_teacher": race_to_teacher(arms, comparison, teacher_eval["perplexity"]),  # None without arms
        "steps": summaries,
    }
    write_json_atomic(recipe.out / "eval.json", result)
    write_report(recipe, result)
    _print_headline(recipe, result)
    return result


def _print_headline(recipe: PipelineConfig, result: dict[str, Any]) -> None:
    sub = result["subnetwork"]
    untrained = sub["perplexity_untrained"]
    print(f"headstart run: teacher {recipe.teacher} ({result['teacher']['params'] / 1e6:.2f}M) perplexity "
          f"{result['teacher']['perplexity']:.2f}; {'selected' if sub.get('selected') else 'best'} sub-network "
          f"({sub['params'] / 1e6:.2f}M) "
          + (f"untrained {untrained:.2f}, " if untrained is not None else "")
          + f"after {result['student']['tokens']:,} tokens {result['student']['perplexity']:.2f} "
          f"(on {result['tokens_scored']:,} held-out tokens); written {recipe.out / 'eval.json'}")
    if recipe.arms:
        print(f"headstart run: the head start, on the same {result['tokens_scored']:,} held-out tokens "
              f"(report: {recipe.out / 'report.md'}):\n{comparison_table(result['comparison'])}")
    if result.get("comparison_to_teacher"):
        print(f"headstart run: the from-scratch arm ended below the teacher; raced to the teacher's perplexity:\n"
              f"{comparison_table(result['comparison_to_teacher'])}")


def write_report(recipe: PipelineConfig, result: dict[str, Any]) -> None:
    """report.md and its figures below `out`: the run at a glance (and its comparison, with baselines)."""
    from headstart.train.plots import plot_training  # lazy: matplotlib

    out, steps = recipe.out, result["steps"]
    teacher_loss = steps["eval"][0]["loss"]
    plot_training({"student": out / "train"}, out / "training_curve.png",
                  {f"teacher ({recipe.teacher}), validation": teacher_loss}, title=f"headstart run: {out}")
    t, sub, st = result["teacher"], result["subnetwork"], result["student"]
    untrained = f"{sub['perplexity_untrained']:.2f}" if sub["perplexity_untrained"] is not None else "(not measured)"
    search = steps["search"]
    objective = (f"its untrained perplexity on the search's own {search['best'].get('tokens', 'held-out')} tokens "
                 f"was {sub['search_perplexity']:.2f}" if sub["search_perplexity"] is not None else
                 "it was chosen by a proxy")
    if sub.get("selected"):
        w, spent = sub["selected"], steps["select"]["compute"]["tokens"]
        objective += (f". The student is not the search's best: successive halving over its best candidates chose "
                      f"candidate {w['candidate']} by trained perplexity ({w['trained_perplexity']:.2f} after "
                      f"{w['tokens']:,} tokens; {spent:,} tokens in all; select/halving.md)"
                      if not steps["select"]["search_best_wins"] else
                      f". Successive halving over its best candidates kept the search's best ({spent:,} tokens in "
                      "all; select/halving.md)")
    text = f"""# headstart run: {out}

| model | parameters | perplexity |
|---|---|---|
| teacher `{recipe.teacher}` | {t['params'] / 1e6:.2f}M | {t['perplexity']:.2f} |
| {'selected' if sub.get('selected') else 'best'} sub-network, untrained | {sub['params'] / 1e6:.2f}M | {untrained} |
| student after {st['tokens']:,} tokens of training | {sub['params'] / 1e6:.2f}M | {st['perplexity']:.2f} |

Perplexity on the same {result['tokens_scored']:,} held-out tokens of `{recipe.data_dir}` throughout (the
windows training validates on). The search evaluated {search['evaluations']} candidates ({search['replayed']}
replayed from its journal); {objective}.
{_comparison_section(result["comparison"], result.get("comparison_to_teacher"))}{_tasks_table(result["tasks"])}
![training curve](training_curve.png)

Search: ![progress](search/progress.png) ![Pareto front](search/pareto.png)

Student: `{st['model']}` (a Hugging Face folder). Every number here is in `eval.json`.
"""
    if result["comparison"]:
        plot_comparison(result["comparison"], out, t["perplexity"])
    write_text_atomic(out / "report.md", text)


def _comparison_section(comparison: dict[str, Any] | None, to_teacher: dict[str, Any] | None) -> str:
    if not comparison:
        return ""
    race = (f"Tokens and FLOPs (student forward + backward, teacher forward counted) each arm needs to first reach "
            f"the from-scratch arm's final perplexity, {comparison['target_perplexity']:.2f}, interpolated in "
            "log-perplexity between validation points; ≤ marks a bound (reached at the first point), and the "
            "ratios are the from-scratch arm's tokens and FLOPs over the arm's." if comparison["reference"] else
            "No `random` arm: nothing to race to.")
    if any(row.get("stopped") for row in comparison["arms"].values()):
        race += (" Runs marked (stopped) ran the same schedule as the others and stopped once they reached that "
                 "perplexity (stop_at_reference): their perplexity is where they stopped, not a final one.")
    return f"""
## The head start

Every arm trained on the same data order, seed, schedule, batch and token budget, validated on the same
windows. {race}

{comparison_table(comparison)}

{sweep_lines(comparison)}
{teacher_race_section(to_teacher)}
![perplexity against tokens](comparison_tokens.png) ![perplexity against FLOPs](comparison_flops.png)
"""


def _tasks_table(tasks: dict[str, dict[str, Any]]) -> str:
    if not tasks:
        return ""
    rows = "\n".join(f"| {task} | {r['teacher']['items']} | {r['teacher']['chance']:.3f} | {r['teacher']['acc']:.3f} | "
                     f"{r['teacher']['acc_norm']:.3f} | {r['student']['acc']:.3f} | {r['student']['acc_norm']:.3f} |"
                     for task, r in tasks.items())
    return f"""
Zero-shot accuracy (first items of each validation set):

| task | items | chance | teacher acc | teacher acc_norm | student acc | student acc_norm |
|---|---|---|---|---|---|---|
{rows}
"""
