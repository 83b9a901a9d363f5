"""results/study/report.md: the study's runs (recipes/study/*.yaml, run by recipes/study/run.sh) in one report.

Each run's own comparison (eval.json, written by `headstart run`) is shown as it is. A run races to its
from-scratch arm's final perplexity; the analyses, which train every arm for 1M tokens and have none (a
from-scratch model that short is far from its plateau, and a sub-network starts below its final perplexity),
race to a reference of their own on the same data order, seed and schedule: a run's sub-network trained on
CE alone (does the KD setting pay against no KD?), and in a table over runs, its first run's student (the
default's: does another space or objective beat it?). A run not yet made is listed as such. A run whose folder
is gone keeps what the previous report in --out said of it (its text, figures and raw comparison), so that the
report grows run by run where only results/ is kept. Run from the repository root: python scripts/study_report.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from headstart.atomic import write_json_atomic, write_text_atomic
from headstart.compare import report
from headstart.train.metrics import read_metrics

SECTIONS = {  # title -> (runs, what it answers)
    "Headline": (["headline-25", "headline-25-seed1", "headline-25-seed2", "headline-50", "headline-50-seed1",
                  "headline-50-seed2", "headline-25-20m", "headline-25-20m-seed1"],
                 "tokens and FLOPs a searched, distilled student saves against a tuned from-scratch model"),
    "Search-space granularity": ([f"granularity-{s}" for s in ("fine-layerwise", "coarse-uniform", "coarse-layerwise",
                                                                 "fine-uniform")],
                                 "which space to search, at equal evaluations (raced to the default's student, "
                                 "fine-layerwise); the layers space cannot reach 25% of this teacher"),
    "Search-space granularity at 53%": (["granularity-fine-layerwise-53", "granularity-layers-53"],
                                        "whole layers dropped (the layers space, whose nearest size to 50% is 3 "
                                        "of the 8 layers, 53%) against the default space"),
    "Search objective": (["kd-losses", "objective-importance", "objective-magnitude"],
                         "untrained perplexity (the default) against the importance and magnitude proxies, each "
                         "search seeded by importance, raced to the perplexity objective's student (kd-losses' "
                         "student: headline-25's search)"),
    "Importance seeding": (["granularity-fine-layerwise", "kd-losses"],
                           "whether seeding the search with the sub-network importance scores choose finds a student "
                           "that trains better: kd-losses' student is headline-25's seeded search (the same space "
                           "and evaluations), trained like the unseeded granularity-fine-layerwise"),
    "Multi-fidelity selection": (["headline-25", "select-25"], "whether the student chosen by short trainings "
                                 "(`headstart select`, successive halving) trains faster than the search's best"),
    "KD losses": (["kd-losses"], "which divergence to distil with, raced to the sub-network on CE alone"),
    "When does KD pay per FLOP": (["kd-per-flop"], "KD for part of training, and the KD weight, raced to the "
                                  "sub-network on CE alone"),
}
# one table over runs, one row per run's student
CROSS_RUN = ("Search-space granularity", "Search-space granularity at 53%", "Search objective", "Importance seeding",
             "Multi-fidelity selection")


def _load(runs: Path, name: str) -> dict[str, Any] | None:
    path = runs / name / "eval.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _arm(row: dict[str, Any], name: str, label: str | None = None) -> report.ArmRuns:
    return report.ArmRuns(name, label or row["label"], row["params"], {row["lr"]: Path(row["run"])})


def _student_row(result: dict[str, Any]) -> dict[str, Any]:
    """The student of a run as a comparison row, whether or not the run had arms."""
    if result.get("comparison"):
        return result["comparison"]["arms"]["student"]
    run = result["steps"]["train"]["out"]
    lr = json.loads((Path(run) / "train_config.json").read_text())["lr"]
    return {"label": "student", "params": result["subnetwork"]["params"], "lr": lr, "run": run}


def _cross_run_reference(done: dict[str, dict[str, Any]]) -> tuple[list[report.ArmRuns], str]:
    """The from-scratch arms of a table over runs, and the one to race to. Runs that trained their own (each of
    its student's architecture) each show it, and the race is to the highest of their final perplexities,
    which every one of their students, stopped at its own, reached; others race to the first run's student."""
    own = {n: r["comparison"]["arms"]["random"] for n, r in done.items()
           if "random" in (r.get("comparison") or {}).get("arms", {})}
    if not own:
        return [], next(iter(done))
    arms = [_arm(row, f"random:{n}", f"from scratch, {n}'s architecture") for n, row in own.items()]
    return arms, f"random:{max(own, key=lambda n: own[n]['perplexity'])}"


def _reads_a_cache(arm: report.ArmRuns) -> bool:
    """Whether the arm read teacher logits from a cache (a run that shares its fill with other arms)."""
    return any(r.get("cached_teacher_flops") for folder in arm.runs.values()
               for r in read_metrics(folder / "metrics.jsonl"))


def _recompare(result: dict[str, Any]) -> dict[str, Any] | None:
    """A run's comparison made again from its arms' curves, raced to its from-scratch arm, else to its sub-network
    on CE alone (an analysis), else to its student; each arm keeps the learning-rate sweep the run recorded. Where
    the from-scratch arm ended below the teacher, `to_teacher` is the race to the teacher's perplexity too."""
    rows = (result.get("comparison") or {}).get("arms", {})
    if not rows:
        return None
    arms = [_arm(row, name) for name, row in rows.items()]
    arms += [dataclasses.replace(arm, name=f"{arm.name}_shared", count_cache=False,
                                 label=f"{arm.label}, its cache's fill counted once where it was filled")
             for arm in arms if _reads_a_cache(arm)]
    comparison = report.compare(arms, next(name for name in ("random", "subnet_ce", "student") if name in rows))
    comparison["to_teacher"] = report.race_to_teacher(arms, comparison, result["teacher"]["perplexity"])
    for race in filter(None, (comparison, comparison["to_teacher"])):
        for name, row in rows.items():
            race["arms"][name]["sweep"] = row.get("sweep")
    return comparison


HEADLINE_ARMS = {"student": "sub-network + KD", "subnet_ce": "sub-network, CE"}
# the seeds of a budget, and of the race against a twice-longer baseline
HEADLINE_GROUPS = (("25%", r"headline-25(-seed\d+)?"), ("50%", r"headline-50(-seed\d+)?"),
                   ("25%, 20M-token baseline", r"headline-25-20m(-seed\d+)?"))


def _ratio_cell(values: list[float]) -> str:
    """Two seeds' ratios as 'mean (low-high)', or the one there is."""
    if not values:
        return "-"
    shown = [f"{v:.2f}x" for v in values]
    if len(values) == 1:
        return shown[0]
    return f"{sum(values) / len(values):.2f}x ({min(values):.2f}-{max(values):.2f}x over {len(values)} seeds)"


def _summary_row(budget: str, target: str, label: str, races: list[dict[str, Any]]) -> str:
    """One row of the headline's summary: an arm's ratios over the seeds that reached the target."""
    tokens = [r["tokens_ratio"] for r in races if r["tokens_ratio"] is not None]
    flops = [r["flops_ratio"] for r in races if r["flops_ratio"] is not None]
    bound = " (bound)" if any(r["bound"] for r in races) else ""
    missed = len(races) - len(tokens)
    note = f" ({missed} of {len(races)} seeds never reached it)" if missed and tokens else ""
    return (f"| {budget} | {target} | {label} | {_ratio_cell(tokens) if tokens else 'not reached'}{bound}{note} | "
            f"{_ratio_cell(flops) if flops else 'not reached'}{bound}{note} |")


def headline_summary(comparisons: dict[str, dict[str, Any] | None]) -> str:
    """The headline in one table: per budget and arm, the tokens and FLOPs ratios over the seeds run so far (and,
    where the from-scratch arm passed the teacher, to the teacher's perplexity too), and per run the from-scratch
    reference it raced (final perplexity, kept rate, what its last doubling gained)."""
    lines = ["| budget | raced to | arm | fewer tokens | fewer FLOPs |", "|---|---|---|---|---|"]
    notes = []
    for budget, pattern in HEADLINE_GROUPS:
        runs = {n: c for n, c in comparisons.items() if c and re.fullmatch(pattern, n)}
        for key, target in (("comparison", "from scratch's final"), ("to_teacher", "the teacher's perplexity")):
            races = [(c if key == "comparison" else c.get(key)) for c in runs.values()]
            races = [r for r in races if r]
            for arm, label in HEADLINE_ARMS.items():
                rows = [r["arms"][arm]["to_reference"] for r in races if arm in r["arms"]]
                if rows:
                    lines.append(_summary_row(budget, target, label, rows))
        for name, c in runs.items():
            ref = c["arms"].get("random")
            if ref:
                gained = ref.get("last_doubling")
                plateau = f"; its last doubling of tokens lowered perplexity by {100 * gained:.1f}%" if gained else ""
                below = (f"; below the teacher's {c['to_teacher']['target_perplexity']:.2f}, so the arms race to the "
                         "teacher's perplexity too" if c.get("to_teacher") else "")
                notes.append(f"- {name}: from scratch {ref['perplexity']:.2f} after {ref['tokens']:,} tokens at lr "
                             f"{float(ref['lr']):g}{plateau}{below}.")
    if len(lines) == 2:
        return ""
    return "\n".join(["### Summary", "", *lines, "", *notes, ""])


def _schedule(result: dict[str, Any]) -> str:
    """The run's token schedule: the longest arm's tokens (an arm stopped at the race's target ran fewer)."""
    rows = (result.get("comparison") or {}).get("arms", {}).values()
    longest = max([row["tokens"] for row in rows] or [result["student"]["tokens"]])
    stopped = any(row.get("stopped") for row in rows)
    return f"every arm on one {longest:,}-token schedule" + (
        ", those marked stopped ending once they reached the from-scratch arm's final perplexity" if stopped else "")


def previous_report(out: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """The report already in `out`: its blocks by section title and by `title/run` (a `### run` part, up to the
    section's "Not yet run" line), and its study.json; empty where there is none."""
    path, raw = out / "report.md", out / "study.json"
    if not (path.is_file() and raw.is_file()):
        return {}, {}
    blocks = {}
    for part in re.split(r"^## ", path.read_text(), flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        blocks[title] = ("## " + part).rstrip("\n") + "\n"
        for sub in re.split(r"^### ", body, flags=re.M)[1:]:
            name = sub.partition("\n")[0]
            blocks[f"{title}/{name}"] = ("### " + sub).split("\nNot yet run:")[0].rstrip("\n") + "\n"
    return blocks, json.loads(raw.read_text())


def _said_before(before: tuple[dict[str, str], dict[str, Any]], title: str, name: str) -> tuple[str, Any] | None:
    """What the previous report said of run `name` in section `title`: its text and raw comparison, if both."""
    blocks, raw = before[0], before[1].get(title, {})
    return (blocks[f"{title}/{name}"], raw[name]) if f"{title}/{name}" in blocks and name in raw else None


def section(runs: Path, out: Path, title: str, names: list[str], question: str,
            before: tuple[dict[str, str], dict[str, Any]] = ({}, {})) -> tuple[str, dict[str, Any]]:
    """A section of the report from the runs there are; what the previous report said (`before`) of those whose
    folders are gone: of each run, or of a whole table over runs when none of them is here."""
    results = {name: _load(runs, name) for name in names}
    done = {n: r for n, r in results.items() if r is not None}
    blocks, old_raw = before[0], before[1].get(title, {})
    if title in CROSS_RUN and not done and title in blocks:
        return blocks[title], old_raw
    kept = {} if title in CROSS_RUN else {n: said for n in names if n not in done
                                           and (said := _said_before(before, title, n)) is not None}
    missing = [n for n in names if n not in done and n not in kept]
    text = [f"## {title}\n\nWhat it answers: {question}.\n"]
    raw: dict[str, Any] = {}
    if title in CROSS_RUN and done:
        arms, reference = _cross_run_reference(done)
        for n, r in done.items():
            arms.append(_arm(_student_row(r), n, f"{n}: untrained {r['subnetwork']['perplexity_untrained']:.2f}"))
            spent = (r["steps"].get("select") or {}).get("compute")
            if spent:  # chosen by `headstart select`: also raced with what the selection trained counted
                arms.append(dataclasses.replace(arms[-1], name=f"{n}_charged", spent_before=(
                    spent["tokens"], spent["flops"]), label=f"{n}, its selection's {spent['tokens']:,} tokens counted"))
        comparison = report.compare(arms, reference)
        raw["comparison"] = comparison
        plot = out / title.lower().replace(" ", "-")
        plot.mkdir(parents=True, exist_ok=True)
        report.plot_comparison(comparison, plot)
        text.append(report.comparison_table(comparison))
        text.append(f"\n![tokens]({plot.name}/comparison_tokens.png) ![FLOPs]({plot.name}/comparison_flops.png)\n")
    else:
        for name in names:
            if name in kept:
                text.append(kept[name][0])
                raw[name] = kept[name][1]
                continue
            if name not in done:
                continue
            result = done[name]
            comparison = _recompare(result)
            raw[name] = comparison
            text.append(f"### {name}\n\nTeacher perplexity {result['teacher']['perplexity']:.2f} on "
                        f"{result['tokens_scored']:,} held-out tokens; {_schedule(result)}; trained on "
                        f"{result['steps']['train'].get('hardware', 'unknown hardware')}.\n")
            if comparison:
                figures = out / name
                figures.mkdir(parents=True, exist_ok=True)
                report.plot_comparison(comparison, figures, result["teacher"]["perplexity"])
                race = report.teacher_race_section(comparison["to_teacher"])
                text += [report.comparison_table(comparison), "", report.sweep_lines(comparison),
                         *([race] if race else []),
                         f"\n![tokens]({name}/comparison_tokens.png) ![FLOPs]({name}/comparison_flops.png)\n"]
    if title == "Headline":
        text.insert(1, headline_summary(raw))
    if missing:
        text.append(f"Not yet run: {', '.join(missing)} (`bash recipes/study/run.sh {' '.join(missing)}`).\n")
    return "\n".join(text), raw


HORIZON = "The from-scratch rate at the full budget"
# the headline runs whose from-scratch arm recipes/study/run.sh trains again, in step horizon-X of headline-X, at
# the rate another of their seeds' 1M-token sweeps kept (run.sh says which), in the folder STEP/lrRATE
HORIZON_RUNS = ("headline-50-seed2", "headline-50", "headline-50-seed1", "headline-25", "headline-25-seed1",
                "headline-25-seed2")


def horizon_check(runs: Path, before: tuple[dict[str, str], dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """A headline run's from-scratch arm also trained for the whole budget at the rate its other seeds' sweeps
    kept, its arms raced again to the same finish lines (the swept arm's final perplexity, and the teacher's)
    with the from-scratch arm at whichever of the two rates ended lower: how far the short sweep's pick
    flattered the run's ratios. A run whose folders are gone races as the previous report has its arms (their
    curves, _replayed); what that report said of a check stays where the check's folder is gone too."""
    text = [f"## {HORIZON}\n\nWhat it answers: whether a from-scratch arm, trained for the whole budget at "
            "the rate another seed's 1M-token sweep kept, ends lower than at the rate its own sweep kept: if so, "
            "its run's ratios were flattered, and its arms race again against it.\n"]
    raw: dict[str, Any] = {}
    for name in HORIZON_RUNS:
        check = "horizon" + name.removeprefix("headline")
        trained = sorted((runs / check).glob("lr*/summary.json"))  # finished; its rate is its folder's (run.sh's)
        result, recorded = _load(runs, name), before[1].get("Headline", {}).get(name)
        if not trained or (result is None and recorded is None):
            said = _said_before(before, HORIZON, name)
            if said is not None:
                text.append(said[0])
                raw[name] = said[1]
            else:
                text.append(f"Not yet run: {check} (`bash recipes/study/run.sh {check}`).\n")
            continue
        folder = trained[0].parent
        lr = folder.name.removeprefix("lr")
        with tempfile.TemporaryDirectory() as replay:
            if result is not None:
                rows, teacher = result["comparison"]["arms"], result["teacher"]["perplexity"]
                arms = {arm: _arm(row, arm) for arm, row in rows.items()}
            else:
                rows, teacher = recorded["arms"], (recorded.get("to_teacher") or {}).get("target_perplexity")
                arms = {arm: _replayed(arm, row, Path(replay) / arm) for arm, row in rows.items()}
            swept = rows["random"]
            arms["random"] = dataclasses.replace(arms["random"], runs={**arms["random"].runs, lr: folder})
            ordered = [arms["random"], *(a for n, a in arms.items() if n != "random")]
            comparison = report.compare(ordered, "random", swept["perplexity"])
            comparison["to_teacher"] = report.race_to_teacher(ordered, comparison, teacher) if teacher else None
        for race in (comparison, comparison["to_teacher"] or {"arms": {}}):  # the runs' own paths, not the replay's
            for arm, row in race["arms"].items():
                row["run"] = str(folder) if row["lr"] == lr and arm == "random" else rows[arm]["run"]
        raw[name] = comparison
        finals = comparison["arms"]["random"]["sweep"]
        text += [f"### {name}\n\nFrom scratch for {swept['tokens']:,} tokens: "
                 + ", ".join(f"{p:.2f} at lr {float(rate):g}" for rate, p in finals.items())
                 + f" (the 1M-token sweep kept {float(swept['lr']):g}; trained on "
                 f"{json.loads((folder / 'summary.json').read_text()).get('hardware', 'unknown hardware')}). "
                 f"Raced to the swept arm's final perplexity, {swept['perplexity']:.2f}:\n",
                 report.comparison_table(comparison), report.teacher_race_section(comparison["to_teacher"])]
    text.insert(1, headline_summary(raw))  # the headline's 50% rows again, each from-scratch arm at its better rate
    return "\n".join(text), raw


def _replayed(name: str, row: dict[str, Any], folder: Path) -> report.ArmRuns:
    """An arm of a run whose folders are gone, as the previous report raced it: its curve (tokens, FLOPs as
    counted, perplexity) written back as a training folder's metrics.jsonl, which compare() reads."""
    folder.mkdir(parents=True)
    first = 0 if row["perplexity_untrained"] is not None else 1  # a curve from step 0 holds the untrained model
    points = [{"step": first + i, "tokens": tokens, "student_flops": flops, "teacher_flops": 0.0, "val_ppl": ppl}
              for i, (tokens, flops, ppl) in enumerate(row["curve"])]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(point) + "\n" for point in points))
    if row["stopped"]:
        (folder / "summary.json").write_text(json.dumps({"stopped_at": points[-1]["step"]}))
    return report.ArmRuns(name, row["label"], row["params"], {row["lr"]: folder})


FIDELITY = ("rank-correlation-25/fidelity.md", "halving-25/halving.md")  # what those steps of run.sh write


def _written(path: Path, out: Path) -> str:
    """A markdown file a study step (its folder's name) wrote, less its title, with its figure (copied into
    `out` as STEP.png) when it made one; or the line saying how to run the step."""
    step = path.parent.name
    if not path.is_file():
        return f"Not yet run: {step} (`bash recipes/study/run.sh {step}`).\n"
    title, body = path.read_text().split("\n", 1)
    figure = path.with_suffix(".png")
    if figure.is_file():
        shutil.copyfile(figure, out / f"{step}.png")
        body += f"\n![{step}]({step}.png)\n"
    return f"### {title.lstrip('# ')}\n{body}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs/study", help="where recipes/study/run.sh wrote the runs")
    parser.add_argument("--out", default="results/study", help="where the report goes")
    args = parser.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    before = previous_report(out)
    parts, raw = [], {}
    for title, (names, question) in SECTIONS.items():
        text, raw[title] = section(runs, out, title, names, question, before)
        parts.append(text)
    text, raw[HORIZON] = horizon_check(runs, before)
    parts.append(text)
    fidelity = "The search's objective against training"
    if not any((runs / path).is_file() for path in FIDELITY) and fidelity in before[0]:
        parts.append(before[0][fidelity])
    else:
        parts.append(f"## {fidelity}\n\n" + "\n".join(_written(runs / path, out) for path in FIDELITY))
    header = ("# The head start, measured on the scale-model teacher\n\nMade by `python scripts/study_report.py` "
              "from the runs of `bash recipes/study/run.sh` (recipes in recipes/study/). Perplexities are on the "
              "same held-out windows within each table; FLOPs count student forward + backward and teacher "
              "forward. Ratios are the tokens (FLOPs) the reference arm (from scratch, where a run has one; each table "
              "names its own) needed to first reach its own final perplexity over those the arm needed to first "
              "reach it; where a from-scratch arm ended below the teacher, which distillation pulls a student "
              "toward, the arms are also raced to the teacher's perplexity.\n")
    write_text_atomic(out / "report.md", header + "\n" + "\n".join(parts))
    write_json_atomic(out / "study.json", raw)
    print(f"wrote {out / 'report.md'}")


if __name__ == "__main__":
    main()
