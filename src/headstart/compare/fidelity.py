"""Does untrained perplexity predict trained quality? Candidates of one search, each trained briefly with KD.

The search ranks sub-networks by their perplexity before any training (the paper's objective). This
module takes candidates of a finished search, extracts each into OUT/candidates/NNN/student, trains
each the same way (same data order, seed, schedule and token budget, through `headstart.train.train`),
and reports the rank correlations (Spearman, Kendall tau-b) between untrained and trained perplexity,
and whether the search's best is also the best after training.

NNN is a candidate's place among the search's distinct candidates sorted by untrained perplexity
(000: the search's best), so one OUT serves both the correlation and successive halving, and a run of
either reuses every training run the other finished. Everything resumes: a student already extracted
and a training run already finished are kept, one cut short continues from its last checkpoint.

Choice rule (`choose_candidates`): among the `pool` best distinct candidates (default: all the search
evaluated, in the bin, with a finite perplexity), N at evenly spaced ranks of the sorted untrained
perplexities, the first (the search's best) and the last always included. Ranks, not values, are spaced:
untrained perplexities span orders of magnitude (random samples against evolved children). Spanning all
candidates asks whether the objective means anything; a small pool asks whether it tells apart the
candidates a search keeps at the end.

Successive halving (`successive_halving`): the N best by untrained perplexity are trained for a short
budget; the better 1/eta of them (by trained perplexity) are trained for eta times the budget, and so on
until one is left. Each rung trains from the extracted sub-network with a schedule of its own budget
(a cosine or WSD schedule is fixed by its token budget, so a run cannot be extended into a longer one);
the compute reported is the sum over every run of every rung, in tokens and FLOPs (teacher counted).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from headstart.atomic import check_out_replaceable, write_json_atomic, write_text_atomic
from headstart.compare.crossing import read_curve
from headstart.errors import UsageError
from headstart.search.journal import JOURNAL, read_header

if TYPE_CHECKING:
    from headstart.model.decoder import Decoder
    from headstart.train.config import TrainConfig

CANDIDATE_FILE = "candidate.json"  # in each candidate's folder: which search candidate it is
PER_RUN = ("student", "data", "out", "teacher", "kd", "tokens")  # training fields this module sets itself


@dataclass(frozen=True)
class Candidate:
    """A distinct candidate of the search, as its journal recorded it."""

    index: int  # its place in the search's order by untrained perplexity (000: the best): its folder's name
    key: str
    eval: int  # its evaluation number in the search
    params: int
    perplexity: float  # untrained, on the search's evaluation tokens
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.index:03d}"


def read_search(search_dir: str | Path) -> tuple[dict[str, Any], list[Candidate]]:
    """The journal's header and its distinct candidates (all in the search's bin), best untrained perplexity first.

    Read only: a last line cut short by a kill is skipped here, and left for the search to repair."""
    path = Path(search_dir) / JOURNAL
    header = read_header(path) if path.is_file() else None
    if header is None:
        raise UsageError(f"{search_dir} is not a search folder (no readable {JOURNAL})",
                         "give --search the --out folder of a finished `headstart search`")
    if header.get("objective", "perplexity") != "perplexity":
        raise UsageError(f"the search in {search_dir} ranked candidates by the {header['objective']} proxy, "
                         "not by untrained perplexity", "give --search a search made with --objective perplexity")
    records: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines()[1:]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # cut short by a kill: the search re-evaluates it when resumed
            break
        if math.isfinite(record.get("perplexity", math.nan)):  # every candidate of a search lies in its bin
            records.setdefault(record["key"], record)
    ordered = sorted(records.values(), key=lambda r: (r["perplexity"], r["eval"]))
    return header, [Candidate(i, r["key"], r["eval"], r["params"], r["perplexity"], r["spec"])
                    for i, r in enumerate(ordered)]


def choose_candidates(candidates: list[Candidate], n: int, pool: int | None = None) -> list[Candidate]:
    """N of the `pool` best candidates at evenly spaced ranks, the best and the last of the pool included
    (all of the pool when it holds fewer than N). `candidates` are sorted best first (`read_search`)."""
    if n < 1 or (pool is not None and pool < 1):
        raise UsageError(f"--candidates {n} / --pool {pool} must be at least 1", "give positive numbers")
    chosen = candidates[:pool] if pool is not None else candidates
    if len(chosen) <= n:
        return list(chosen)
    if n == 1:
        return [chosen[0]]
    return [chosen[round(i * (len(chosen) - 1) / (n - 1))] for i in range(n)]


def average_ranks(values: list[float] | np.ndarray) -> np.ndarray:
    """1-based ranks, smallest first; tied values share the mean of the ranks they span."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rho: the Pearson correlation of the average ranks (NaN when either side is constant)."""
    rx, ry = average_ranks(x) - (len(x) + 1) / 2, average_ranks(y) - (len(y) + 1) / 2
    scale = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / scale if scale else math.nan


def kendall(x: list[float], y: list[float]) -> float:
    """Kendall's tau-b: (concordant - discordant) pairs over the geometric mean of the pairs not tied on
    each side (NaN when either side is constant)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    upper = np.triu_indices(len(x), k=1)
    sx, sy = np.sign(x[:, None] - x[None, :])[upper], np.sign(y[:, None] - y[None, :])[upper]
    scale = math.sqrt(float(np.count_nonzero(sx)) * float(np.count_nonzero(sy)))
    return float(sx @ sy) / scale if scale else math.nan


def training_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The training fields shared by every candidate's run; refuses those this module sets per run."""
    taken = sorted(set(settings) & set(PER_RUN))
    if taken:
        raise UsageError(f"training setting {taken[0]} is set per candidate", "drop it from the settings")
    return dict(settings)


def train_config(student: Path, out: Path, teacher: str, data: str, kd: str | None, tokens: int | str,
                 settings: dict[str, Any]) -> TrainConfig:
    """One candidate's TrainConfig: the shared settings with its student, folder and budget (checked)."""
    from headstart.settings import make
    from headstart.train.config import TrainConfig

    return make(TrainConfig, settings | {"student": str(student), "data": str(data), "out": str(out),
                                         "teacher": teacher if kd else None, "kd": kd, "tokens": tokens})


def check_inputs(search_dir: str | Path, out: str | Path, teacher: str, data: str, kd: str | None, tokens: int | str,
                 settings: dict[str, Any]) -> tuple[dict[str, Any], list[Candidate]]:
    """Everything that can be refused before a model is loaded: the search, the settings, the out folder."""
    header, candidates = read_search(search_dir)
    if not candidates:
        raise UsageError(f"the search in {search_dir} holds no candidate with a finite perplexity in its bin",
                         "let the search evaluate some candidates first")
    train_config(Path(out) / "student", Path(out) / "train", teacher, data, kd, tokens, training_settings(settings))
    check_out_replaceable(out, "candidates folder (it has no candidates/)", lambda p: (p / "candidates").is_dir())
    return header, candidates


def load_teacher(teacher: str, header: dict[str, Any], search_dir: str | Path) -> Decoder:
    """The teacher, refused unless it has the weights the search evaluated its candidates on."""
    from headstart.model import load_model, weights_fingerprint

    model = load_model(teacher)
    if header.get("teacher_weights") not in (None, weights_fingerprint(model)):
        raise UsageError(f"--teacher {teacher} is not the teacher the search in {search_dir} cut its candidates from "
                         "(its weights differ)", f"give the search's teacher, {header.get('teacher')}")
    return model


def prepare_student(teacher_model: Decoder, candidate: Candidate, out: Path) -> Path:
    """OUT/candidates/NNN/student, extracted once; a folder of another candidate is refused."""
    from headstart.subnet import SubnetSpec, extract_to_folder

    folder = out / "candidates" / candidate.name
    record = {"key": candidate.key, "eval": candidate.eval, "params": candidate.params,
              "perplexity": candidate.perplexity, "spec": candidate.spec}
    marker = folder / CANDIDATE_FILE
    if marker.is_file():
        if json.loads(marker.read_text())["key"] != candidate.key:
            raise UsageError(f"{folder} holds another candidate than the search's {candidate.name} now "
                             "(the search was extended or replaced since)", "use a new --out")
    else:
        write_json_atomic(marker, record)
    student = folder / "student"
    if not (student / "config.json").is_file():
        extract_to_folder(teacher_model, SubnetSpec.from_dict(candidate.spec, teacher_model.config), student)
    return student


def train_once(cfg: TrainConfig) -> dict[str, Any]:
    """Train `cfg` unless its folder holds a finished run of the same settings; resumes one cut short."""
    from headstart.train import train
    from headstart.train.loop import CONFIG_FILE

    out = Path(cfg.out)
    done = out / "summary.json"
    if (out / CONFIG_FILE).is_file() and _same_run(json.loads((out / CONFIG_FILE).read_text())) != _same_run(
            cfg.to_dict()):
        raise UsageError(f"{out} was trained with other settings", "use the same settings, or a new --out")
    if done.is_file():
        return {**json.loads(done.read_text()), "skipped": True}
    return {**train(cfg, resume=True), "skipped": False}


def _same_run(config: dict[str, Any]) -> dict[str, Any]:
    """A training config without the folders this module derives from OUT (given relative or absolute)."""
    return {k: v for k, v in config.items() if k not in ("student", "out")}


@dataclass(frozen=True)
class Trial:
    """What one candidate's training run gave."""

    candidate: Candidate
    run: Path
    tokens: int  # trained on
    flops: float  # student forward + backward and teacher forward
    perplexity: float  # validation, after training
    untrained_validation: float | None  # validation at step 0: the same windows, before training
    skipped: bool  # finished by an earlier run
    hardware: str  # what it trained on, in words

    def describe(self) -> str:
        c = self.candidate
        return (f"candidate {c.name} (search eval {c.eval}): {c.params / 1e6:.3f}M params, untrained "
                f"{c.perplexity:.2f}, trained {self.perplexity:.2f} after {self.tokens:,} tokens"
                + (" (trained before)" if self.skipped else ""))


def print_trial(trial: Trial) -> None:
    """The progress line of a trained candidate (the `report` of rank_correlation and successive_halving)."""
    print(trial.describe(), flush=True)


Report = Callable[[Trial], None]


@dataclass(frozen=True)
class CandidateTrainer:
    """The one way every candidate is trained here: extracted from the teacher into OUT/candidates/NNN/student,
    trained in OUT/candidates/NNN/train-TOKENS with the shared settings and the given budget."""

    teacher_model: Decoder  # loaded once, to extract from
    out: Path
    teacher: str
    data: str
    kd: str | None
    settings: dict[str, Any]
    report: Report | None = None

    def __call__(self, candidate: Candidate, tokens: int | str) -> Trial:
        from headstart.settings import parse_count

        student = prepare_student(self.teacher_model, candidate, self.out)
        cfg = train_config(student, student.parent / f"train-{parse_count(tokens)}", self.teacher, self.data, self.kd,
                           tokens, self.settings)
        summary = train_once(cfg)
        curve = read_curve(cfg.out)
        step0 = curve[0].perplexity if curve and curve[0].step == 0 else None
        flops = summary["student_flops"] + summary["teacher_flops"] + summary.get("cached_teacher_flops", 0.0)
        trial = Trial(candidate, Path(cfg.out), summary["tokens"], flops, summary["val_ppl"], step0,
                      summary["skipped"], summary.get("hardware", "unknown"))
        if self.report is not None:
            self.report(trial)
        return trial

    def provenance(self, search_dir: str | Path, command: str | None, trials: list[Trial]) -> dict[str, Any]:
        """What a result was made from and on, for its JSON and its Markdown."""
        return {"search": str(search_dir), "teacher": self.teacher, "data": str(self.data), "kd": self.kd,
                "settings": self.settings, "command": command, "hardware": sorted({t.hardware for t in trials})}


def _start(search_dir: str | Path, out: str | Path, teacher: str, data: str, kd: str | None, tokens: int | str,
           settings: dict[str, Any] | None, report: Report | None) -> tuple[list[Candidate], CandidateTrainer]:
    """Check everything, then load the teacher: the search's candidates and the trainer of both studies."""
    out, settings = Path(out), training_settings(settings or {})
    header, searched = check_inputs(search_dir, out, teacher, data, kd, tokens, settings)
    teacher_model = load_teacher(teacher, header, search_dir)
    return searched, CandidateTrainer(teacher_model, out, teacher, str(data), kd, settings, report)


def rank_correlation(search_dir: str | Path, teacher: str, data: str, out: str | Path, candidates: int = 16,
                     tokens: int | str = "200K", kd: str = "forward_kl", settings: dict[str, Any] | None = None,
                     pool: int | None = None, report: Report | None = None,
                     command: str | None = None) -> dict[str, Any]:
    """Train the chosen candidates of a search and correlate their untrained and trained perplexities;
    writes OUT/fidelity.json, fidelity.md and fidelity.png (fidelity-poolP.* with a pool), and returns what
    the JSON holds.
    `command`: how it was run, recorded with the result."""
    _, searched = read_search(search_dir)
    chosen = choose_candidates(searched, candidates, pool)  # refuses bad counts before the teacher is loaded
    searched, trainer = _start(search_dir, out, teacher, data, kd, tokens, settings, report)
    trials = [trainer(candidate, tokens) for candidate in chosen]
    result = {**correlation_result(trials, searched, pool), "tokens": str(tokens),
              **trainer.provenance(search_dir, command, trials)}
    stem = trainer.out / ("fidelity" if pool is None else f"fidelity-pool{pool}")  # one OUT serves several pools
    result["markdown"] = str(stem.with_suffix(".md"))
    write_json_atomic(stem.with_suffix(".json"), result)
    write_text_atomic(stem.with_suffix(".md"), fidelity_markdown(result))
    plot_fidelity(result, stem.with_suffix(".png"))
    return result


def correlation_result(trials: list[Trial], searched: list[Candidate], pool: int | None) -> dict[str, Any]:
    """The table and the correlations of the trained candidates (the arithmetic, no files)."""
    untrained = [t.candidate.perplexity for t in trials]
    trained = [t.perplexity for t in trials]
    rank_u, rank_t = average_ranks(untrained), average_ranks(trained)
    rows = [{**_trial_row(t), "untrained_rank": float(ru), "trained_rank": float(rt)}
            for t, ru, rt in zip(trials, rank_u, rank_t, strict=True)]
    best_search = min(rows, key=lambda r: r["untrained_perplexity"])
    best_trained = min(rows, key=lambda r: r["trained_perplexity"])
    validation = [t.untrained_validation for t in trials]
    step0 = None if None in validation else {"spearman": spearman(validation, trained),
                                             "kendall": kendall(validation, trained)}
    return {"candidates": rows, "searched": len(searched), "pool": pool,
            "spearman": spearman(untrained, trained), "kendall": kendall(untrained, trained),
            "step0_correlation": step0,
            "search_best": best_search["candidate"], "trained_best": best_trained["candidate"],
            "search_best_is_trained_best": best_search["trained_perplexity"] <= best_trained["trained_perplexity"],
            "gap": {"perplexity": best_search["trained_perplexity"] - best_trained["trained_perplexity"],
                    "ratio": best_search["trained_perplexity"] / best_trained["trained_perplexity"]}}


def _rank(r: float) -> str:
    return f"{r:g}"


def fidelity_markdown(result: dict[str, Any]) -> str:
    """fidelity.md: the candidates as a table, then the correlations and the two bests."""
    rows = result["candidates"]
    lines = ["# Does untrained perplexity predict trained quality?", "",
             f"{len(rows)} of the {result['searched']} distinct candidates of `{result['search']}`"
             + (f" (chosen among its {result['pool']} best)" if result["pool"] else "")
             + f", each trained for {rows[0]['tokens']:,} tokens with `--kd {result['kd']}` from the same "
             "extracted start, data order, seed and schedule. Untrained perplexity: the search's (its evaluation "
             "tokens); step 0: the training run's validation windows before any step; trained: the same windows "
             "after training. Rank 1 is the lowest perplexity.", "",
             "| candidate | params | untrained ppl | step-0 ppl | trained ppl | untrained rank | trained rank |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        step0 = r["untrained_validation_perplexity"]
        lines.append(f"| {r['candidate']} | {r['params'] / 1e6:.3f}M | {r['untrained_perplexity']:.2f} | "
                     f"{'-' if step0 is None else f'{step0:.2f}'} | {r['trained_perplexity']:.2f} | "
                     f"{_rank(r['untrained_rank'])} | {_rank(r['trained_rank'])} |")
    lines += ["", _made_by(result), "",
              f"- Spearman rank correlation, untrained vs trained perplexity: {result['spearman']:.3f}; "
              f"Kendall tau-b: {result['kendall']:.3f}."]
    if result["step0_correlation"]:
        c = result["step0_correlation"]
        lines.append(f"- With the step-0 perplexity on the training's validation windows instead: Spearman "
                     f"{c['spearman']:.3f}, Kendall {c['kendall']:.3f}.")
    gap = result["gap"]
    lines.append(f"- The search's best ({result['search_best']}) is the trained best." if
                 result["search_best_is_trained_best"] else
                 f"- The search's best ({result['search_best']}) is not the trained best ({result['trained_best']}): "
                 f"trained perplexity {gap['perplexity']:+.2f} ({(gap['ratio'] - 1) * 100:+.1f}%) against it.")
    return "\n".join(lines) + "\n"


def plot_fidelity(result: dict[str, Any], path: Path) -> None:
    """fidelity.png: trained against untrained perplexity, log-log, each candidate labelled."""
    from headstart.figures import plt, save_figure  # lazy: matplotlib

    rows = result["candidates"]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    xs, ys = [r["untrained_perplexity"] for r in rows], [r["trained_perplexity"] for r in rows]
    ax.scatter(xs, ys, s=18, color="C0")
    for r, x, y in zip(rows, xs, ys, strict=True):
        ax.annotate(r["candidate"], (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    for name, color, label, size in ((result["search_best"], "C1", "search's best", 130),
                                     (result["trained_best"], "C2", "trained best", 60)):  # both seen when one
        r = next(r for r in rows if r["candidate"] == name)
        ax.scatter([r["untrained_perplexity"]], [r["trained_perplexity"]], s=size, facecolors="none",
                   edgecolors=color, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("untrained perplexity (search)")
    ax.set_ylabel(f"perplexity after {rows[0]['tokens']:,} tokens of KD")
    ax.set_title(f"Spearman {result['spearman']:.2f}, Kendall {result['kendall']:.2f}", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def successive_halving(search_dir: str | Path, teacher: str, data: str, out: str | Path, candidates: int = 16,
                       tokens: int | str = "50K", eta: int = 2, kd: str | None = "forward_kl",
                       settings: dict[str, Any] | None = None, report: Report | None = None,
                       command: str | None = None, equal_compute: bool = True) -> dict[str, Any]:
    """Multi-fidelity selection: the `candidates` best by untrained perplexity trained for `tokens`, the best
    1/eta of them (by trained perplexity) for eta times as many, ... until one is left; then, with
    `equal_compute`, the search's best trained for as many tokens as the whole selection spent (the evidence:
    it doubles the cost). Writes OUT/best.json (the winner, as a search's best.json: `headstart extract --spec`
    reads it), halving.json and halving.md, and returns what halving.json holds. `kd` None trains on CE."""
    from headstart.settings import parse_count

    if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
        raise UsageError(f"--eta {eta} must be a whole number of at least 2", "keep the best half with --eta 2")
    if candidates < 1:
        raise UsageError(f"--candidates {candidates} must be at least 1", "give a positive number")
    searched, trainer = _start(search_dir, out, teacher, data, kd, tokens, settings, report)
    if len(searched) < candidates:
        print(f"select: warning: the search holds {len(searched)} candidates, fewer than --candidates {candidates}: "
              "all of them enter the first rung", file=sys.stderr)
    alive, budget, rungs = searched[:candidates], parse_count(tokens), []
    while True:
        trials = sorted((trainer(c, budget) for c in alive), key=lambda t: t.perplexity)
        rungs.append(trials)
        if len(trials) == 1:
            break
        alive, budget = [t.candidate for t in trials[:math.ceil(len(trials) / eta)]], budget * eta
    spent_tokens = sum(t.tokens for rung in rungs for t in rung)
    spent_flops = sum(t.flops for rung in rungs for t in rung)
    winner, best = rungs[-1][0], searched[0]
    last_of_best = [t for rung in rungs for t in rung if t.candidate.key == best.key][-1]
    equal = trainer(best, spent_tokens) if equal_compute else None
    result = {"eta": eta, "searched": len(searched),
              "rungs": [{"tokens": rung[0].tokens, "candidates": [_trial_row(t) for t in rung]} for rung in rungs],
              "compute": {"tokens": spent_tokens, "flops": spent_flops},
              "winner": _trial_row(winner), "search_best": best.name,
              "search_best_wins": winner.candidate.key == best.key,
              "search_best_at_its_last_rung": _trial_row(last_of_best),
              "equal_compute": {**_trial_row(equal), "winner_is_better": winner.perplexity < equal.perplexity}
              if equal is not None else None,
              **trainer.provenance(search_dir, command, [t for rung in rungs for t in rung] + [equal] * bool(equal))}
    c = winner.candidate
    write_json_atomic(trainer.out / "best.json", {"spec": c.spec, "params": c.params, "perplexity": c.perplexity,
                                                  "eval": c.eval, "trained_perplexity": winner.perplexity,
                                                  "trained_tokens": winner.tokens, "candidate": c.name})
    write_json_atomic(trainer.out / "halving.json", result)
    write_text_atomic(trainer.out / "halving.md", halving_markdown(result))
    return result


def _trial_row(t: Trial) -> dict[str, Any]:
    """One trained candidate as the JSON and the tables show it."""
    c = t.candidate
    return {"candidate": c.name, "key": c.key, "eval": c.eval, "params": c.params, "untrained_perplexity": c.perplexity,
            "untrained_validation_perplexity": t.untrained_validation, "trained_perplexity": t.perplexity,
            "tokens": t.tokens, "flops": t.flops, "run": str(t.run)}


def _made_by(result: dict[str, Any]) -> str:
    """The line that says how and where a result was made (every number in a doc says so)."""
    command = f"`{result['command']}`" if result["command"] else "a call of headstart.compare.fidelity"
    return f"Made by {command} on {'; '.join(result['hardware'])}."


def halving_markdown(result: dict[str, Any]) -> str:
    """halving.md: each rung's candidates, the compute spent, and the winner against the search's best."""
    loss = f"`--kd {result['kd']}`" if result["kd"] else "cross-entropy"
    lines = ["# Successive halving over the search's best candidates", "",
             f"Each rung trains its candidates afresh from the extracted sub-network ({loss}, the same "
             f"data order, seed and schedule shape) and keeps the best 1/{result['eta']} by trained perplexity.", "",
             "| rung | tokens each | candidate (untrained ppl -> trained ppl), best first |", "|---|---|---|"]
    for i, rung in enumerate(result["rungs"]):
        cells = ", ".join(f"{r['candidate']} ({r['untrained_perplexity']:.2f} -> {r['trained_perplexity']:.2f})"
                          for r in rung["candidates"])
        lines.append(f"| {i} | {rung['tokens']:,} | {cells} |")
    w, e, c = result["winner"], result["equal_compute"], result["compute"]
    lines += ["", _made_by(result), "",
              f"- Compute spent on the selection: {c['tokens']:,} tokens, {c['flops']:.3g} FLOPs "
              "(teacher counted).",
              f"- Winner: {w['candidate']}, trained perplexity {w['trained_perplexity']:.2f} after {w['tokens']:,} "
              "tokens" + (" (the search's best)." if result["search_best_wins"] else
                          f"; the search's best ({result['search_best']}) had "
                          f"{result['search_best_at_its_last_rung']['trained_perplexity']:.2f} after "
                          f"{result['search_best_at_its_last_rung']['tokens']:,} tokens, its last rung."),
              f"- At equal compute, the search's best trained for {e['tokens']:,} tokens: perplexity "
              f"{e['trained_perplexity']:.2f}; the winner of the selection is "
              f"{'better' if e['winner_is_better'] else 'not better'}." if e else
              "- Not compared with the search's best at equal compute."]
    return "\n".join(lines) + "\n"
