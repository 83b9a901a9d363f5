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
    eval        eval.json, report.md,  teacher and student on the same held-out tokens, the
                training_curve.png     student's curve against the teacher's level

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
    "eval": ("model", "data"),
}
RECIPE_HELP = "a YAML or JSON file: out, teacher, and a section per step (see `headstart run --help`)"


@dataclass(frozen=True)
class Recipe:
    out: Path
    teacher: str
    data: Path | None  # a prepared folder to use instead of the prepare step
    sections: dict[str, dict[str, Any]]

    @property
    def data_dir(self) -> Path:
        return self.data if self.data is not None else self.out / "data"


def load_pipeline_recipe(path: str | Path, out: str | Path | None = None) -> Recipe:
    """Read and check a pipeline recipe; `out` overrides the recipe's."""
    raw = read_mapping(path, RECIPE_HELP)
    unknown = sorted(set(raw) - {"out", "teacher", "data", *STEPS})
    if unknown:
        raise UsageError(f"recipe {path} has unknown keys {', '.join(unknown)}",
                         f"use out, teacher, data and the step sections {', '.join(STEPS)}")
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
    return Recipe(Path(out or raw["out"]), str(raw["teacher"]), Path(raw["data"]) if raw.get("data") else None,
                  sections)


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


def plan(recipe: Recipe) -> list[tuple[str, list[str]]]:
    """(step, argv) in order; eval is two calls of `headstart eval`, teacher then student."""
    out, teacher, data = recipe.out, recipe.teacher, str(recipe.data_dir)
    s = {step: section_argv(section) for step, section in recipe.sections.items()}
    steps: list[tuple[str, list[str]]] = []
    if recipe.data is None:
        tokenizer = [] if {"tokenizer", "train_tokenizer"} & set(recipe.sections["prepare"]) else [
            "--tokenizer", teacher]
        steps.append(("prepare", [*tokenizer, *s["prepare"], "--out", data]))
    importance: list[str] = []
    if recipe.sections["importance"]:
        steps.append(("importance", ["--teacher", teacher, "--data", data, "--out", str(out / "importance"),
                                     *s["importance"]]))
        importance = ["--importance", str(out / "importance" / "importance.json")]
    steps.append(("search", ["--teacher", teacher, "--data", data, "--out", str(out / "search"), *importance,
                             *s["search"]]))
    steps.append(("extract", ["--teacher", teacher, "--spec", str(out / "search" / "best.json"),
                              "--out", str(out / "student"), *s["extract"]]))
    kd_teacher = ["--teacher", teacher] if recipe.sections["train"].get("kd") else []
    steps.append(("train", ["--student", str(out / "student"), "--data", data, "--out", str(out / "train"),
                            "--resume", *kd_teacher, *s["train"]]))
    for model in (teacher, str(out / "train" / "final")):
        steps.append(("eval", ["--model", model, "--data", data, *s["eval"]]))
    return steps


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
    parsed = [(step, *parse_step(step, argv)) for step, argv in plan(recipe)]  # every section checked up front
    for _, args, module in parsed:
        if hasattr(module, "check_arguments"):
            module.check_arguments(args)  # values too, before hours of the steps before it
    _check_same_teacher(recipe)
    # decided before the ranks meet, so that every rank sees the folder before rank 0 writes to it
    skip = {step for step, args, module in parsed if step == "prepare" and _already_prepared(args, module)}
    ranks = init_ranks()
    summaries: dict[str, Any] = {}
    try:
        waiting = waiting_group(ranks)
        for step, args, module in parsed:
            if step in skip:
                _say(ranks, f"{step}: {args.out} holds this preparation already; skipped")
                continue
            _say(ranks, f"{step} ...")
            if step in DISTRIBUTED_STEPS or ranks.is_main:
                summary = module.run(args)
                if step == "eval":
                    summaries.setdefault("eval", []).append(summary)
                else:
                    summaries[step] = summary
            if step not in DISTRIBUTED_STEPS:
                wait_for_main(ranks, waiting)
    finally:
        close_ranks(ranks)
    if not ranks.is_main:
        return {}
    return _report(recipe, summaries)


def _report(recipe: Recipe, summaries: dict[str, Any]) -> dict[str, Any]:
    teacher_eval, student_eval = summaries["eval"]
    best = summaries["search"]["best"]
    result = {
        "out": str(recipe.out),
        "teacher": {"model": recipe.teacher, "params": summaries["extract"]["teacher_params"],
                    "perplexity": teacher_eval["perplexity"]},
        "subnetwork": {"params": best["params"], "perplexity_untrained": best.get("perplexity")},
        "student": {"model": student_eval["model"], "tokens": summaries["train"]["tokens"],
                    "perplexity": student_eval["perplexity"]},
        "tokens_scored": student_eval["tokens"],
        "tasks": {task: {"teacher": teacher_eval["tasks"][task], "student": result}
                  for task, result in student_eval.get("tasks", {}).items()},
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
    return result


def write_report(recipe: Recipe, result: dict[str, Any]) -> None:
    """report.md and training_curve.png below `out`: the run at a glance, with its figures."""
    from headstart.train.plots import plot_training  # lazy: matplotlib

    out, steps = recipe.out, result["steps"]
    teacher_loss = steps["eval"][0]["loss"]
    plot_training({"student": out / "train"}, out / "training_curve.png",
                  {f"teacher ({recipe.teacher}), validation": teacher_loss}, title=f"headstart run: {out}")
    t, sub, st = result["teacher"], result["subnetwork"], result["student"]
    untrained = f"{sub['perplexity_untrained']:.2f}" if sub["perplexity_untrained"] is not None else "(proxy search)"
    search = steps["search"]
    text = f"""# headstart run: {out}

| model | parameters | perplexity |
|---|---|---|
| teacher `{recipe.teacher}` | {t['params'] / 1e6:.2f}M | {t['perplexity']:.2f} |
| best sub-network, untrained | {sub['params'] / 1e6:.2f}M | {untrained} |
| student after {st['tokens']:,} tokens of training | {sub['params'] / 1e6:.2f}M | {st['perplexity']:.2f} |

Perplexity on {result['tokens_scored']:,} held-out tokens of `{recipe.data_dir}`. The search evaluated
{search['evaluations']} candidates ({search['replayed']} replayed from its journal).

{_tasks_table(result["tasks"])}
![training curve](training_curve.png)

Search: ![progress](search/progress.png) ![Pareto front](search/pareto.png)

Student: `{st['model']}` (a Hugging Face folder). Every number here is in `eval.json`.
"""
    write_text_atomic(out / "report.md", text)


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
