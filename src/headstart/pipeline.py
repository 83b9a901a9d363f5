"""`headstart run`: the whole pipeline from one recipe file, every step resumable.

A recipe names the teacher, an output folder and one section per step. A section's keys are the
flags of that step's own command (`seq_len: 256` is `--seq-len 256`, a list gives several values,
`true` a switch), so a recipe can say whatever the commands take and the commands check it. The
pipeline fills in the flags that join the steps; a recipe that sets one of them is refused.

    step        writes (below `out`)   on a second run
    prepare     data/                  skipped if data/ was prepared by the same command with
                                       the same tokenizer (or name a prepared folder with `data:`)
    importance  importance/            optional (only with its section); its scores seed the search
    search      search/                resumed from its journal
    extract     student/               rewritten (cheap, deterministic)
    train       train/                 resumed from its last checkpoint
    eval        eval.json, report.md,  teacher and student on the same held-out windows as training's
                training_curve.png     validation (train's eval_tokens and seq_len), the student's curve
    baselines   baselines/ARM/         optional: arms trained like the student for comparison (see
                                       headstart.compare.arms); the report races them to the from-scratch
                                       arm's final perplexity in tokens and FLOPs (comparison_*.png)

A second run of a folder whose search was made with other weights of the teacher (one retrained
into the same folder) is refused before any step.

Under torchrun, search and train use every rank; the other steps run on rank 0 while the rest wait
for it in a group of their own, whose timeout (two days) outlasts preparing a large corpus.
"""

from __future__ import annotations

import argparse
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headstart.atomic import write_json_atomic, write_text_atomic
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
    student_lr,
    sweep_folder,
)
from headstart.compare.report import ArmRuns, compare, comparison_table, plot_comparison, sweep_lines
from headstart.errors import UsageError
from headstart.search.journal import JOURNAL, read_header
from headstart.train.config import read_mapping
from headstart.train.distributed import Ranks, close_ranks, init_ranks, wait_for_main, waiting_group

STEPS = ("prepare", "importance", "search", "extract", "train", "eval")
DISTRIBUTED_STEPS = ("search", "train")
# the flags of each step that the pipeline sets, joining it to the steps before it
JOINING_FLAGS = {
    "prepare": ("out",),
    "importance": ("teacher", "data", "out"),
    "search": ("teacher", "data", "out", "importance"),
    "extract": ("teacher", "spec", "out"),
    "train": ("student", "data", "out", "teacher", "resume", "config"),
    "eval": ("model", "data", "tokens", "seq_len"),  # the windows of training's validation
}
RECIPE_HELP = "a YAML or JSON file: out, teacher, and a section per step (see `headstart run --help`)"


@dataclass(frozen=True)
class Recipe:
    out: Path
    teacher: str
    data: Path | None  # a prepared folder to use instead of the prepare step
    sections: dict[str, dict[str, Any]]
    arms: list[ArmPlan]  # baselines and variants, trained beside the student (compare.arms)
    stop_at_reference: bool = False  # every other arm stops once it reaches the from-scratch arm's final perplexity

    @property
    def data_dir(self) -> Path:
        return self.data if self.data is not None else self.out / "data"


def load_pipeline_recipe(path: str | Path, out: str | Path | None = None) -> Recipe:
    """Read and check a pipeline recipe; `out` overrides the recipe's."""
    raw = read_mapping(path, RECIPE_HELP)
    unknown = sorted(set(raw) - {"out", "teacher", "data", "baselines", "variants", "stop_at_reference", *STEPS})
    if unknown:
        raise UsageError(f"recipe {path} has unknown keys {', '.join(unknown)}", "use out, teacher, data, "
                         f"baselines, variants, stop_at_reference and the step sections {', '.join(STEPS)}")
    for key in ("out", "teacher"):
        if not raw.get(key) and not (key == "out" and out):
            raise UsageError(f"recipe {path} names no {key}", f"add `{key}: ...` to it")
    sections = {}
    for step in STEPS:
        section = raw.get(step) or {}
        if not isinstance(section, dict):
            raise UsageError(f"recipe {path}: section {step} is not a mapping", "write `flag: value` lines under it")
        taken = sorted(k for k in section if k.replace("-", "_") in JOINING_FLAGS[step])
        if taken:
            raise UsageError(f"recipe {path}: {step}.{taken[0]} is set by the pipeline",
                             f"remove it; the pipeline joins {step} to the steps before it")
        sections[step] = section
    if raw.get("data") and raw.get("prepare"):
        raise UsageError(f"recipe {path} has both `data:` and a prepare section", "keep one of them")
    if not raw.get("data") and not sections["prepare"].get("input"):
        raise UsageError(f"recipe {path} has no data", "add `data: PREPARED_FOLDER` or prepare.input")
    if "budget" not in sections["search"]:
        raise UsageError(f"recipe {path} gives the search no budget", "add `budget: 25%` (or 50M) under search")
    if "tokens" not in sections["train"]:
        raise UsageError(f"recipe {path} gives training no token budget", "add `tokens: 10M` under train")
    arms = parse_arms(raw.get("baselines"), raw.get("variants"), sections["train"], f"recipe {path}")
    stop = raw.get("stop_at_reference", False)
    if not isinstance(stop, bool) or (stop and not any(arm.name == REFERENCE for arm in arms)):
        raise UsageError(f"recipe {path}: stop_at_reference needs true or false, and a `{REFERENCE}` baseline",
                         f"add `{REFERENCE}: {{}}` under baselines, or drop stop_at_reference")
    return Recipe(Path(out or raw["out"]), str(raw["teacher"]), Path(raw["data"]) if raw.get("data") else None,
                  sections, arms, stop)


def section_argv(section: dict[str, Any]) -> list[str]:
    """`{"seq_len": 256, "val_docs": ["a", "b"], "compile": true}` -> `--seq-len 256 --val-docs a b --compile`."""
    argv: list[str] = []
    for key, value in section.items():
        flag = "--" + str(key).replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            argv += [flag] if value else ["--no-" + flag[2:]]
        elif isinstance(value, list):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


class _StepParser(argparse.ArgumentParser):
    """A command's parser whose errors name the recipe section instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"recipe section {self.prog}: {message}", f"use the flags of `headstart {self.prog}` "
                         "as keys (underscores for dashes)")


def parse_step(step: str, argv: list[str]) -> tuple[argparse.Namespace, Any]:
    """The step command's arguments, parsed by its own parser, and its module."""
    module = importlib.import_module(f"headstart.cli.{step}")
    parser = _StepParser(prog=step, add_help=False)
    module.add_arguments(parser)
    return parser.parse_args(argv), module


@dataclass(frozen=True)
class Step:
    name: str  # what the pipeline calls it: the command, or `ARM:command` for a baseline arm's steps
    command: str  # the headstart command that runs it
    argv: list[str]
    pick_lr: tuple[tuple[str, Path], ...] = ()  # train at the best of these (rate, sweep run) once they ran
    stop_at: tuple[Path, ...] = ()  # stop at the best final perplexity of these runs (the reference arm's)


def plan(recipe: Recipe) -> list[Step]:
    """The steps in order: the student's, each baseline arm's, then eval (teacher and student)."""
    out, teacher, data = recipe.out, recipe.teacher, str(recipe.data_dir)
    s = {step: section_argv(section) for step, section in recipe.sections.items()}
    steps: list[Step] = []
    if recipe.data is None:
        tokenizer = [] if {"tokenizer", "train_tokenizer"} & set(recipe.sections["prepare"]) else [
            "--tokenizer", teacher]
        steps.append(Step("prepare", "prepare", [*tokenizer, *s["prepare"], "--out", data]))
    importance_json = str(out / "importance" / "importance.json")
    if recipe.sections["importance"] or any(plan.arm.strategy == "oneshot" for plan in recipe.arms):
        steps.append(Step("importance", "importance", ["--teacher", teacher, "--data", data,
                                                       "--out", str(out / "importance"), *s["importance"]]))
    seeded = ["--importance", importance_json] if recipe.sections["importance"] else []

    def search_and_extract(where: Path, prefix: str, extra: list[str]) -> None:
        steps.append(Step(prefix + "search", "search", ["--teacher", teacher, "--data", data,
                                                        "--out", str(where / "search"), *s["search"], *extra]))
        steps.append(Step(prefix + "extract", "extract", ["--teacher", teacher, "--spec",
                                                          str(where / "search" / "best.json"),
                                                          "--out", str(where / "student"), *s["extract"]]))

    def train(name: str, student: Path, run_dir: Path, section: dict[str, Any],
              pick_lr: tuple[tuple[str, Path], ...] = (), stop_at: tuple[Path, ...] = ()) -> None:
        kd_teacher = ["--teacher", teacher] if section.get("kd") else []
        steps.append(Step(name, "train", ["--student", str(student), "--data", data, "--out", str(run_dir),
                                          "--resume", *kd_teacher, *section_argv(section)], pick_lr, stop_at))

    def arm_steps(arm: ArmPlan, stop_at: tuple[Path, ...]) -> None:
        where, student = out / arm.folder, out / "student"
        if arm.arm.strategy is not None:
            importance = ["--importance", importance_json] if arm.arm.strategy == "oneshot" else seeded
            search_and_extract(where, f"{arm.name}:", ["--strategy", arm.arm.strategy, *importance])
            student = where / "student"
        lrs, short = arm.overrides["lr"], arm.overrides.get("sweep_tokens")
        if short is not None:  # the rates at a short budget, then the best at the full one
            sweep = tuple(short_sweep(where, lrs))
            for lr, (_, folder) in zip(lrs, sweep, strict=True):
                section = arm_train_section(recipe.sections["train"], arm.arm, arm.overrides, lr)
                train(f"{arm.name}:sweep lr={lr}", student, folder, {**section, "tokens": short})
            train(f"{arm.name}:train", student, where / "train",
                  arm_train_section(recipe.sections["train"], arm.arm, arm.overrides, lrs[0]), sweep, stop_at)
            return
        for lr in lrs:
            section = arm_train_section(recipe.sections["train"], arm.arm, arm.overrides, lr)
            train(f"{arm.name}:train" + (f" lr={lr}" if len(lrs) > 1 else ""), student,
                  where / sweep_folder(lrs, lr), section, stop_at=stop_at)

    search_and_extract(out, "", seeded)
    # racing: the from-scratch arm first, then every other run stops at its final perplexity
    reference = next((a for a in recipe.arms if a.name == REFERENCE), None) if recipe.stop_at_reference else None
    stop_at: tuple[Path, ...] = ()
    if reference is not None:
        arm_steps(reference, ())
        stop_at = tuple(full_runs(out / reference.folder, reference.overrides))
    train("train", out / "student", out / "train", recipe.sections["train"], stop_at=stop_at)
    for arm in recipe.arms:
        if arm is not reference:
            arm_steps(arm, stop_at)
    windows = ["--tokens", str(_train_field(recipe, "eval_tokens")), "--seq-len", str(_train_field(recipe, "seq_len"))]
    for model in (teacher, str(out / "train" / "final")):
        steps.append(Step("eval", "eval", ["--model", model, "--data", data, *windows, *s["eval"]]))
    return steps


def _with_lr(argv: list[str], lr: str) -> list[str]:
    at = argv.index("--lr") + 1
    return [*argv[:at], lr, *argv[at + 1:]]


def _train_field(recipe: Recipe, name: str) -> int:
    """A whole-number field of the recipe's training section, or its default."""
    from headstart.train.config import field_defaults, parse_count

    return parse_count(recipe.sections["train"].get(name, field_defaults()[name]))


def _already_prepared(args: argparse.Namespace, module: Any) -> bool:
    """The same command, and the tokenizer it names unchanged (a teacher replaced in its folder re-prepares)."""
    try:
        manifest = json.loads((Path(args.out) / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if manifest.get("created_by") != module.command_line(args):
        return False
    if args.tokenizer is None:  # trained by the command itself
        return True
    from headstart.data import load_tokenizer, tokenizer_fingerprint

    return manifest["tokenizer"]["fingerprint"] == tokenizer_fingerprint(load_tokenizer(args.tokenizer))


def _check_same_teacher(recipe: Recipe) -> None:
    """Refuse, before any step, to go on with a run whose teacher has since been replaced in its folder:
    its search journal records the weights it searched (checked again by the search itself)."""
    header = read_header(recipe.out / "search" / JOURNAL)
    if header is None or "teacher_weights" not in header:
        return
    from headstart.model import load_model, weights_fingerprint

    if header["teacher_weights"] != weights_fingerprint(load_model(recipe.teacher)):
        raise UsageError(f"{recipe.out} holds a run of another teacher: the weights of {recipe.teacher} have "
                         "changed since its search", f"give a new --out, or delete {recipe.out} to start over")


def _say(ranks: Ranks, message: str) -> None:
    if ranks.is_main:
        print(f"headstart run: {message}", flush=True)


def run_pipeline(recipe: Recipe) -> dict[str, Any]:
    """Run every step in order; returns each step's summary and the final comparison."""
    parsed = [(step, *parse_step(step.command, step.argv)) for step in plan(recipe)]  # all checked up front
    for _, args, module in parsed:
        if hasattr(module, "check_arguments"):
            module.check_arguments(args)  # values too, before hours of the steps before it
    _check_same_teacher(recipe)
    # decided before the ranks meet, so that every rank sees the folder before rank 0 writes to it
    skip = {step.name for step, args, module in parsed if step.name == "prepare" and _already_prepared(args, module)}
    ranks = init_ranks()
    summaries: dict[str, Any] = {}
    try:
        waiting = waiting_group(ranks)
        for step, args, module in parsed:
            if step.name in skip:
                _say(ranks, f"{step.name}: {args.out} holds this preparation already; skipped")
                continue
            _say(ranks, f"{step.name} ...")
            if step.pick_lr or step.stop_at:  # settings that the runs before it decide
                argv = step.argv
                if step.pick_lr:
                    lr = best_rate(list(step.pick_lr))
                    argv = _with_lr(argv, lr)
                    _say(ranks, f"{step.name}: learning rate {lr}, the best of its sweep")
                if step.stop_at:
                    target = min(final_perplexity(run) for run in step.stop_at)
                    argv = [*argv, "--stop-below", repr(target)]
                    _say(ranks, f"{step.name}: stops at perplexity {target:.2f}, the from-scratch arm's final one")
                args, module = parse_step(step.command, argv)
            if step.command in DISTRIBUTED_STEPS or ranks.is_main:
                summary = module.run(args)
                if step.name == "eval":
                    summaries.setdefault("eval", []).append(summary)
                else:
                    summaries[step.name] = summary
            if step.command not in DISTRIBUTED_STEPS:
                wait_for_main(ranks, waiting)
    finally:
        close_ranks(ranks)
    if not ranks.is_main:
        return {}
    return _report(recipe, summaries)


def _arm_runs(recipe: Recipe, summaries: dict[str, Any]) -> list[ArmRuns]:
    """The student and each baseline arm as trained, in the order the report shows them."""
    student_label = "sub-network + KD (the student)" if recipe.sections["train"].get("kd") else \
        "sub-network (the student)"
    student_params = summaries["extract"]["params"]
    student = ArmRuns("student", student_label, student_params,
                      {str(student_lr(recipe.sections["train"])): recipe.out / "train"})
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


def _report(recipe: Recipe, summaries: dict[str, Any]) -> dict[str, Any]:
    teacher_eval, student_eval = summaries["eval"]
    best = summaries["search"]["best"]
    comparison = compare(_arm_runs(recipe, summaries), REFERENCE)
    student = comparison["arms"]["student"]
    result = {
        "out": str(recipe.out),
        "teacher": {"model": recipe.teacher, "params": summaries["extract"]["teacher_params"],
                    "perplexity": teacher_eval["perplexity"]},
        "subnetwork": {"params": best["params"], "perplexity_untrained": student["perplexity_untrained"],
                       "search_perplexity": best.get("perplexity")},
        "student": {"model": student_eval["model"], "tokens": summaries["train"]["tokens"],
                    "perplexity": student_eval["perplexity"]},
        "tokens_scored": student_eval["tokens"],
        "tasks": {task: {"teacher": teacher_eval["tasks"][task], "student": result}
                  for task, result in student_eval.get("tasks", {}).items()},
        "comparison": comparison if recipe.arms else None,
        "steps": summaries,
    }
    write_json_atomic(recipe.out / "eval.json", result)
    write_report(recipe, result)
    untrained = result["subnetwork"]["perplexity_untrained"]
    print(f"headstart run: teacher {recipe.teacher} ({result['teacher']['params'] / 1e6:.2f}M) perplexity "
          f"{result['teacher']['perplexity']:.2f}; best sub-network ({best['params'] / 1e6:.2f}M) "
          + (f"untrained {untrained:.2f}, " if untrained is not None else "")
          + f"after {result['student']['tokens']:,} tokens {result['student']['perplexity']:.2f} "
          f"(on {result['tokens_scored']:,} held-out tokens); written {recipe.out / 'eval.json'}")
    if recipe.arms:
        print(f"headstart run: the head start, on the same {result['tokens_scored']:,} held-out tokens "
              f"(report: {recipe.out / 'report.md'}):\n{comparison_table(comparison)}")
    return result


def write_report(recipe: Recipe, result: dict[str, Any]) -> None:
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
    text = f"""# headstart run: {out}

| model | parameters | perplexity |
|---|---|---|
| teacher `{recipe.teacher}` | {t['params'] / 1e6:.2f}M | {t['perplexity']:.2f} |
| best sub-network, untrained | {sub['params'] / 1e6:.2f}M | {untrained} |
| student after {st['tokens']:,} tokens of training | {sub['params'] / 1e6:.2f}M | {st['perplexity']:.2f} |

Perplexity on the same {result['tokens_scored']:,} held-out tokens of `{recipe.data_dir}` throughout (the
windows training validates on). The search evaluated {search['evaluations']} candidates ({search['replayed']}
replayed from its journal); {objective}.
{_comparison_section(result["comparison"])}{_tasks_table(result["tasks"])}
![training curve](training_curve.png)

Search: ![progress](search/progress.png) ![Pareto front](search/pareto.png)

Student: `{st['model']}` (a Hugging Face folder). Every number here is in `eval.json`.
"""
    if result["comparison"]:
        plot_comparison(result["comparison"], out, t["perplexity"])
    write_text_atomic(out / "report.md", text)


def _comparison_section(comparison: dict[str, Any] | None) -> str:
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
