"""Search: budgets respected, no candidate evaluated twice, resume equals an uninterrupted run, Pareto fronts."""

from __future__ import annotations

import json
import random

import pytest
from train_support import make_data, make_model, run_cli

from headstart.cli.main import main
from headstart.errors import UsageError
from headstart.eval import scoring_windows
from headstart.model import load_model
from headstart.search import PerplexityObjective, ProxyObjective, SearchConfig, non_dominated, run_search
from headstart.search.journal import read_header
from headstart.search.pareto import dominates, nsga2_rank
from headstart.search.run import importance_seed
from headstart.search.strategies import StrategySettings
from headstart.subnet import SubnetSpec, full_spec, make_space, param_count, parse_budget
from headstart.subnet.importance import Importance, magnitude_importance
from headstart.subnet.spaces import human
from headstart.subnet.spec import load_spec


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    data = make_data(root)
    teacher_dir = make_model(root / "teacher", root / "tokenizer", kind="teacher")
    return data, teacher_dir


def search(setup, out, strategy="evolution", evals=10, space="fine-layerwise", budget="50%", objective=None,
           cost="params", seed=0):
    data, teacher_dir = setup
    teacher = load_model(teacher_dir)
    sp = make_space(space, teacher.config)
    bin_ = parse_budget(budget, param_count(teacher.config), tolerance=0.1)
    windows = scoring_windows(teacher, data, "validation", 256, 32)
    cfg = SearchConfig(space=space, budget=budget, strategy=strategy, evals=evals, tokens=256, seq_len=32,
                       cost=cost, seed=seed, settings=StrategySettings(population=4, tournament=2))
    objective = objective or PerplexityObjective(teacher, windows, batch_size=4)
    header = {"teacher": str(teacher_dir), "budget": [bin_.lo, bin_.hi], **cfg.to_dict()}
    return run_search(teacher, sp, bin_, objective, cfg, out, header, progress=False), bin_, teacher


def journal(out):
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()[1:]]


@pytest.mark.parametrize("strategy", ["evolution", "random", "stratified", "pareto"])
def test_every_candidate_is_in_the_budget_and_evaluated_once(setup, tmp_path, strategy):
    summary, budget, teacher = search(setup, tmp_path, strategy=strategy)
    records = journal(tmp_path)
    assert len(records) == summary["evaluations"] == 10
    assert len({r["key"] for r in records}) == len(records)
    for r in records:
        spec = load_spec_from(r, teacher)
        assert param_count(teacher.config, spec) == r["params"] in budget
    best = load_spec(tmp_path / "best.json", teacher.config)
    assert param_count(teacher.config, best) in budget
    assert summary["best"]["loss"] == min(r["loss"] for r in records)
    assert (tmp_path / "pareto.png").stat().st_size > 0 and (tmp_path / "progress.png").stat().st_size > 0


def load_spec_from(record, teacher):
    return SubnetSpec.from_dict(record["spec"], teacher.config)


def test_resume_after_a_kill_equals_an_uninterrupted_run(setup, tmp_path):
    whole, _, _ = search(setup, tmp_path / "whole", evals=14)
    search(setup, tmp_path / "killed", evals=9)  # stopped after 9 evaluations ...
    path = tmp_path / "killed/journal.jsonl"
    path.write_text(path.read_text() + '{"key": "cut short by a ki')  # ... in the middle of writing a line
    resumed, _, _ = search(setup, tmp_path / "killed", evals=14)
    assert resumed["replayed"] == 9  # nothing evaluated twice
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "at")} for r in journal(tmp_path / "whole")]
    assert [{k: v for k, v in r.items() if k not in ("seconds", "at")} for r in journal(tmp_path / "killed")] == strip
    assert resumed["best"] == whole["best"]


def test_a_journal_of_another_search_is_refused(setup, tmp_path):
    search(setup, tmp_path, evals=4)
    with pytest.raises(UsageError, match="different search"):
        search(setup, tmp_path, evals=4, seed=1)


def test_evolution_improves_on_its_initial_population(setup, tmp_path):
    summary, _, _ = search(setup, tmp_path, evals=16)
    records = journal(tmp_path)
    assert min(r["loss"] for r in records) <= min(r["loss"] for r in records if r["origin"] == "initial")
    assert any(r["origin"] == "child" for r in records)
    assert summary["best"]["perplexity"] > 1


def test_pareto_front_is_non_dominated_and_covers_the_rest(setup, tmp_path):
    search(setup, tmp_path, strategy="pareto", evals=12, budget="20%:90%", cost="flops")
    front = json.loads((tmp_path / "pareto.json").read_text())["front"]
    points = [(r["loss"], r["cost"]) for r in journal(tmp_path)]
    front_points = [(r["loss"], r["cost"]) for r in front]
    assert not any(dominates(p, q) for p in points for q in front_points)
    assert all(q in front_points or any(dominates(f, q) or f == q for f in front_points) for q in points)


def test_non_dominated_and_nsga2_rank_on_random_points():
    rng = random.Random(0)
    points = [(rng.random(), rng.random()) for _ in range(60)]
    front = non_dominated(points)
    assert front and all(not dominates(points[j], points[i]) for i in front for j in range(60))
    order = nsga2_rank(points)
    assert sorted(order) == list(range(60)) and set(order[:len(front)]) == set(front)


def test_magnitude_proxy_search_needs_no_forward_pass(setup, tmp_path):
    teacher = load_model(setup[1])
    proxy = ProxyObjective(teacher.config, magnitude_importance(teacher))
    summary, _, _ = search(setup, tmp_path, objective=proxy)
    assert -1 <= summary["best"]["loss"] < 0 and "perplexity" not in summary["best"]


def cli_search(setup, out, *extra):
    data, teacher_dir = setup
    return ["search", "--teacher", str(teacher_dir), "--data", str(data), "--out", str(out), "--evals", "6",
            "--population", "3", "--tokens", "256", "--seq-len", "32", *extra]


@pytest.mark.parametrize("case,extra,message", [
    ("budget", ["--budget", "10"], "no fine-layerwise sub-network has"),
    ("space", ["--budget", "50%", "--space", "tiny"], "--space 'tiny' is unknown"),
    ("strategy", ["--budget", "50%", "--strategy", "annealing"], "--strategy 'annealing' is unknown"),
])
def test_bad_input_is_one_line_and_exit_2(setup, tmp_path, capsys, case, extra, message):
    assert main(cli_search(setup, tmp_path / "out", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def layer_sizes(setup):
    """The sizes of the layers space over the test teacher (3 layers: one size per depth)."""
    teacher = load_model(setup[1]).config
    space = make_space("layers", teacher)
    return sorted({param_count(teacher, space.sample(random.Random(i))) for i in range(50)})


def test_a_bin_between_the_sizes_of_a_whole_layers_space_is_refused_naming_the_nearest(setup, tmp_path, capsys):
    one, two = layer_sizes(setup)[:2]
    argv = cli_search(setup, tmp_path / "out", "--space", "layers", "--budget", f"{one + 1}:{two - 1}")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"the nearest sizes it has: {human(one)} and {human(two)})" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_a_search_that_runs_out_of_unseen_sub_networks_says_so(setup, tmp_path, capsys):
    one = layer_sizes(setup)[0]  # a bin of one layer: 3 sub-networks, fewer than --evals 6
    assert main(cli_search(setup, tmp_path / "out", "--space", "layers", "--budget", f"{one}:{one}",
                           "--importance", "none")) == 0
    assert "best of 3 (0 from the journal); stopped short of 6: the strategy found no sub-network in the bin it " \
           "had not evaluated" in capsys.readouterr().out
    assert len(journal(tmp_path / "out")) == 3


def test_data_of_another_tokenizer_is_refused(setup, tmp_path, capsys):
    other = make_data(tmp_path / "other", n_words=30)
    argv = cli_search((other, setup[1]), tmp_path / "out", "--budget", "50%")
    assert main(argv) == 2
    assert "tokenized with tokenizer" in capsys.readouterr().err


def test_a_teacher_retrained_in_its_folder_does_not_replay_the_old_journal(setup, tmp_path, capsys):
    data, _ = setup
    teacher = make_model(tmp_path / "teacher", data.parent / "tokenizer", kind="teacher", seed=5)
    argv = cli_search((data, teacher), tmp_path / "out", "--budget", "50%")
    assert main(argv) == 0
    make_model(teacher, data.parent / "tokenizer", kind="teacher", seed=6)  # same path and shape, new weights
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "belongs to a different search (its teacher_weights differ)" in err and "\n" not in err


def test_two_ranks_under_torchrun_give_the_single_process_journal(setup, tmp_path):
    args = ["--budget", "50%", "--seed", "3"]
    one = run_cli(cli_search(setup, tmp_path / "one", *args))
    assert one.returncode == 0, one.stderr[-2000:]
    two = run_cli(cli_search(setup, tmp_path / "two", *args), ranks=2)
    assert two.returncode == 0, two.stderr[-2000:]
    strip = [[r["key"], round(r["loss"], 5)] for r in journal(tmp_path / "one")]
    assert [[r["key"], round(r["loss"], 5)] for r in journal(tmp_path / "two")] == strip


def test_evolution_starts_from_the_teacher_shrunk_evenly_into_the_bin(setup, tmp_path):
    _, budget, teacher = search(setup, tmp_path, evals=4)
    first = load_spec_from(journal(tmp_path)[0], teacher)
    coarse = make_space("coarse-layerwise", teacher.config)
    assert first == coarse.repair(full_spec(teacher.config), budget, random.Random(0))
    assert all(s.mlp == tuple(range(len(s.mlp))) for s in first.layers)  # first-k units: coarse


def test_importance_scores_seed_the_search(setup, tmp_path, capsys):
    data, teacher_dir = setup
    assert main(["importance", "--teacher", str(teacher_dir), "--data", str(data), "--out", str(tmp_path / "imp"),
                 "--tokens", "256", "--seq-len", "32"]) == 0
    assert main(cli_search(setup, tmp_path / "out", "--budget", "50%", "--importance",
                           str(tmp_path / "imp/importance.json"))) == 0
    first = journal(tmp_path / "out")[0]
    assert first["origin"] == "initial"
    teacher = load_model(teacher_dir)
    scores = Importance.from_dict(json.loads((tmp_path / "imp/importance.json").read_text())["activation"])
    space = make_space("fine-layerwise", teacher.config)
    budget = parse_budget("50%", param_count(teacher.config))
    assert load_spec_from(first, teacher) == importance_seed(space, budget, scores, 0)[0]


def test_by_default_the_search_scores_the_teacher_itself_and_none_leaves_it_unseeded(setup, tmp_path):
    from headstart.configs import ImportanceConfig

    data, teacher_dir = setup
    assert main(cli_search(setup, tmp_path / "auto", "--budget", "50%")) == 0
    # the same scores as `headstart importance` on the train windows the search reads
    assert main(["importance", "--teacher", str(teacher_dir), "--data", str(data), "--out", str(tmp_path / "imp"),
                 "--tokens", str(ImportanceConfig.tokens), "--seq-len", "32"]) == 0
    teacher = load_model(teacher_dir)
    scores = Importance.from_dict(json.loads((tmp_path / "imp/importance.json").read_text())["activation"])
    space = make_space("fine-layerwise", teacher.config)
    seed = importance_seed(space, parse_budget("50%", param_count(teacher.config)), scores, 0)[0]
    assert load_spec_from(journal(tmp_path / "auto")[0], teacher) == seed
    assert main(cli_search(setup, tmp_path / "none", "--budget", "50%", "--importance", "none")) == 0
    assert seed not in [load_spec_from(r, teacher) for r in journal(tmp_path / "none")]
    headers = [read_header(tmp_path / o / "journal.jsonl") for o in ("auto", "none")]
    assert [h["importance"] for h in headers] == ["auto", None]


class BarRecorder:
    """Stands for the progress bar: records, at every update, how many candidates the journal holds."""

    def __init__(self, journal_path):
        self.journal_path, self.seen = journal_path, []

    def set_postfix_str(self, text, refresh=True):
        pass

    def update(self, n=1):
        self.seen.append(self.journal_path.read_text().count("\n") - 1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_progress_moves_with_each_candidate_as_it_reaches_the_journal(setup, tmp_path, monkeypatch):
    from headstart.search import run as run_module

    bars = []

    def recorder(**kwargs):
        bars.append((kwargs, BarRecorder(tmp_path / "journal.jsonl")))
        return bars[-1][1]

    monkeypatch.setattr(run_module, "progress_bar", recorder)
    search(setup, tmp_path, evals=6)
    assert bars[0][0]["initial"] == 0 and bars[0][1].seen == [1, 2, 3, 4, 5, 6]  # one candidate at a time
    search(setup, tmp_path, evals=9)  # resumed: the bar starts past the 6 replayed, which take no time
    assert bars[1][0]["initial"] == 6 and bars[1][1].seen == [7, 8, 9]


def test_evals_not_above_the_population_is_said(setup, tmp_path, capsys):
    argv = cli_search(setup, tmp_path / "out", "--budget", "50%")  # --evals 6, --population 3
    argv[argv.index("--population") + 1] = "6"
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "--evals 6 is not above --population 6, so evolution only evaluates its first generation" in err


def test_a_search_moved_to_another_folder_still_resumes(tmp_path):
    from headstart.search.journal import Journal

    header = {"teacher": "/a/teacher", "teacher_weights": "w1", "data": "/a/data", "data_identity": {"n": 1},
              "importance": "/a/importance.json", "space": "fine-layerwise"}
    journal = Journal(tmp_path / "journal.jsonl", header)
    journal.add({"key": "k1", "loss": 1.0})
    moved = {**header, "teacher": "/b/teacher", "data": "/b/data", "importance": "/b/importance.json"}
    assert Journal(tmp_path / "journal.jsonl", moved).records["k1"]["loss"] == 1.0
    with pytest.raises(UsageError, match=r"belongs to a different search \(its teacher_weights differ\)"):
        Journal(tmp_path / "journal.jsonl", {**moved, "teacher_weights": "w2"})
    with pytest.raises(UsageError, match=r"\(its seed, space differ\)"):
        Journal(tmp_path / "journal.jsonl", {**moved, "space": "layers", "seed": 1})
    for seeded_otherwise in (None, "auto"):  # not seeded, or by its own scores: another search
        with pytest.raises(UsageError, match=r"\(its seeded differ\)"):
            Journal(tmp_path / "journal.jsonl", {**moved, "importance": seeded_otherwise})
