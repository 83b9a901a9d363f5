"""scripts/study_report.py: each run's comparison as it is; runs without a from-scratch arm raced to a reference of
their own (the sub-network on CE alone, or a table's first run)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fake_run(runs: Path, name: str, arms: dict[str, list[float]], reference: bool) -> None:
    """A run folder as `headstart run` leaves it: each arm's metrics.jsonl, and eval.json's comparison."""
    rows = {}
    for arm, ppls in arms.items():
        folder = runs / name / arm / "train"
        rows[arm] = {"label": arm, "params": 2e6, "lr": "0.002", "run": str(folder),
                     "tokens": fake_curve(folder, ppls, arm), "perplexity": ppls[-1]}
    result = {"teacher": {"perplexity": 50.0, "params": 8e6}, "tokens_scored": 65536,
              "subnetwork": {"params": 2e6, "perplexity_untrained": arms["student"][0]},
              "student": {"tokens": 1000 * (len(arms["student"]) - 1)},
              "steps": {"train": {"out": rows["student"]["run"], "hardware": "test"},
                        "search": {"best": {"params": 2e6}}},
              "comparison": {"reference": "random" if reference else None, "arms": rows}}
    (runs / name / "eval.json").write_text(json.dumps(result))


def fake_curve(folder: Path, ppls: list[float], arm: str) -> int:
    """A training folder's metrics.jsonl: a validation point per 1,000 tokens (KD arms run the teacher); the tokens
    of its last point."""
    folder.mkdir(parents=True)
    lines = [{"step": i, "val_loss": 0.0, "val_ppl": p, "tokens": 1000 * i, "student_flops": 3e9 * i,
              "teacher_flops": (4e9 * i if arm not in ("random", "subnet_ce", "cached") else 0.0),
              "cached_teacher_flops": 4e9 * i if arm == "cached" else 0.0} for i, p in enumerate(ppls)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return lines[-1]["tokens"]


def test_the_report_shows_each_run_and_races_the_analyses_to_references_of_their_own(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results"
    fake_run(runs, "headline-25", {"random": [1000.0, 400.0, 100.0], "student": [200.0, 80.0, 60.0]}, True)
    fake_run(runs, "headline-25-seed1", {"random": [1000.0, 300.0, 100.0], "student": [150.0, 90.0, 70.0]}, True)
    # at 50% from scratch ends at 40, below the teacher's 50, which the student never gets under
    fake_run(runs, "headline-50", {"random": [1000.0, 300.0, 40.0], "student": [200.0, 60.0, 45.0]}, True)
    fake_run(runs, "headline-25-20m", {"random": [1000.0, 300.0, 90.0], "student": [150.0, 90.0, 70.0]}, True)
    fake_run(runs, "select-25", {"random": [1000.0, 300.0, 110.0], "student": [150.0, 80.0, 60.0]}, True)
    selected = json.loads((runs / "select-25" / "eval.json").read_text())
    selected["steps"]["select"] = {"compute": {"tokens": 500, "flops": 1.5e9}}
    (runs / "select-25" / "eval.json").write_text(json.dumps(selected))
    fake_run(runs, "kd-losses", {"subnet_ce": [200.0, 150.0, 100.0], "student": [200.0, 100.0, 70.0],
                                 "js": [200.0, 150.0, 110.0], "cached": [200.0, 100.0, 70.0]}, False)
    for name, ppls in (("granularity-fine-layerwise", [200.0, 100.0, 80.0]), ("granularity-coarse-uniform",
                                                                            [150.0, 80.0, 70.0])):
        fake_run(runs, name, {"student": ppls}, False)  # a run without arms: no comparison, its lr in train_config
        result = json.loads((runs / name / "eval.json").read_text()) | {"comparison": None}
        (runs / name / "eval.json").write_text(json.dumps(result))
        (runs / name / "student" / "train" / "train_config.json").write_text(json.dumps({"lr": 0.002}))
    (runs / "halving-25").mkdir()
    (runs / "halving-25" / "halving.md").write_text("# Successive halving\n\n- Winner: 003.\n")
    (runs / "halving-25" / "halving.png").write_bytes(b"png")
    report = report_of(runs, out)
    # the headline's student reaches 100 between its points 0 (200) and 1 (80): log-interpolated
    assert "| student | 2.00M | 0.002 | 60.00 | 756 |" in report
    # kd-losses had no from-scratch arm: it races to its sub-network on CE alone, and js never gets there
    assert "| subnet_ce | 2.00M | 0.002 | 100.00 | 2K | 1.00x | 6G | 1.00x |" in report
    assert "| student | 2.00M | 0.002 | 70.00 | 1K | 2.00x | 7G | 0.86x |" in report
    assert "| js | 2.00M | 0.002 | 110.00 | not reached | - |" in report
    # an arm that read a logit cache: once as charged (the cache's fill too), once with the fill counted elsewhere
    assert "| cached | 2.00M | 0.002 | 70.00 | 1K | 2.00x | 7G | 0.86x |" in report
    assert "| cached, its cache's fill counted once where it was filled | 2.00M | 0.002 | 70.00 | 1K | 2.00x | 3G | " \
           "2.00x |" in report
    expected = [
        # a table over runs without from-scratch arms races to its first run's student (the default's); the coarse
        # space's student reaches 80, the default's final perplexity, at its point 1 (1,000 tokens)
        "| granularity-fine-layerwise: untrained 200.00 | 2.00M | 0.002 | 80.00 | 2K | 1.00x |",
        "| granularity-coarse-uniform: untrained 150.00 | 2.00M | 0.002 | 70.00 | 1K | 2.00x |",
        "Not yet run: headline-25-seed2, headline-50-seed1, headline-50-seed2",
        # select-25 and headline-25 each raced a from-scratch arm of their own student's architecture: the table
        # over both races to the higher final perplexity (110, select-25's), which every student reached; the
        # selected student as trained, and with its selection's tokens and FLOPs counted from its first point
        "| from scratch, select-25's architecture | 2.00M | 0.002 | 110.00 | 2K | 1.00x |",
        "| from scratch, headline-25's architecture | 2.00M | 0.002 | 100.00 | 1.93K | 1.04x |",
        "| headline-25: untrained 200.00 | 2.00M | 0.002 | 60.00 | 652 | 3.07x |",
        "| select-25: untrained 150.00 | 2.00M | 0.002 | 60.00 | 493 | 4.05x |",
        "| select-25, its selection's 500 tokens counted | 2.00M | 0.002 | 60.00 | 993 | 2.01x |",
        # the summary: seed 0 needs 756.x of 2,000 tokens (2.64x), seed 1 794 (150 -> 90 crosses 100 at 0.794)
        "| 25% | from scratch's final | sub-network + KD | 2.58x (2.52-2.64x over 2 seeds) |",
        # at 50% it is not reached, and is raced to the teacher's 50: from scratch there at 1,889 tokens, the
        # student at 1,634 (1.16x); with the teacher's 4e9 FLOPs a token-thousand, 0.50x the FLOPs
        "| 50% | from scratch's final | sub-network + KD | not reached | not reached |",
        # headline-25-20m's own row: the student at 90 at 1,000 tokens, from scratch there at 2,000
        "| 25%, 20M-token baseline | from scratch's final | sub-network + KD | 2.00x | 0.86x |",
        "- headline-25-20m: from scratch 90.00 after 2,000 tokens at lr 0.002; its last doubling of tokens lowered "
        "perplexity by 70.0%.",
        "| 50% | the teacher's perplexity | sub-network + KD | 1.16x | 0.50x |",
        "below the teacher's 50.00, so the arms race to the teacher's perplexity too.",
        "| student | 2.00M | 0.002 | 45.00 | 1.63K | 1.16x | 11.4G | 0.50x |",
    ]
    for line in expected:
        assert line in report, line
    assert "- headline-25: from scratch 100.00 after 2,000 tokens at lr 0.002; its last doubling of tokens " \
           "lowered perplexity by 75.0%." in report
    # the fidelity steps: one not run yet, one written by rank_correlation.py --halving
    assert "Not yet run: rank-correlation-25 (`bash recipes/study/run.sh rank-correlation-25`)." in report
    assert "### Successive halving\n\n- Winner: 003.\n\n![halving-25](halving-25.png)" in report
    assert (out / "halving-25.png").read_bytes() == b"png"
    assert (out / "kd-losses" / "comparison_tokens.png").is_file()
    assert json.loads((out / "study.json").read_text())["KD losses"]["kd-losses"]["target_perplexity"] == 100.0


def report_of(runs: Path, out: Path) -> str:
    """scripts/study_report.py run from the test's folder (as the first test always did); its report.md."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "study_report.py"), "--runs", str(runs),
                           "--out", str(out)], capture_output=True, text=True, cwd=out.parent)
    assert done.returncode == 0, done.stderr
    return (out / "report.md").read_text()


def test_a_run_whose_folder_is_gone_keeps_what_the_last_report_said_of_it(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results"
    fake_run(runs, "headline-25", {"random": [1000.0, 400.0, 100.0], "student": [200.0, 80.0, 60.0]}, True)
    fake_run(runs, "headline-25-seed1", {"random": [1000.0, 300.0, 100.0], "student": [150.0, 90.0, 70.0]}, True)
    fake_run(runs, "granularity-fine-layerwise", {"subnet_ce": [200.0, 150.0, 100.0], "student": [200.0, 100.0, 80.0]},
             False)
    (runs / "halving-25").mkdir()
    (runs / "halving-25" / "halving.md").write_text("# Successive halving\n\n- Winner: 003.\n")
    first = report_of(runs, out)
    assert report_of(tmp_path / "none", out) == first  # nothing here: the report as it was
    # only results/ kept, and one new run: the others' parts as the last report had them, the new one added
    shutil.rmtree(runs)
    fake_run(runs, "headline-25-20m", {"random": [1000.0, 300.0, 90.0], "student": [150.0, 90.0, 70.0]}, True)
    grown = report_of(runs, out)
    seed1 = first[first.index("### headline-25-seed1"):first.index("## Search-space granularity\n")]
    assert seed1.split("Not yet run")[0] in grown and "### headline-25-20m" in grown
    assert "| 25% | from scratch's final | sub-network + KD | 2.58x (2.52-2.64x over 2 seeds) |" in grown
    granularity = first[first.index("## Search-space granularity\n"):first.index("## Search-space granularity at")]
    assert granularity in grown and "### Successive halving\n\n- Winner: 003.\n" in grown
    assert "Not yet run: headline-25-seed2, headline-50, headline-50-seed1, headline-50-seed2, " \
           "headline-25-20m-seed1 (" in grown
    assert set(json.loads((out / "study.json").read_text())["Headline"]) == {"headline-25", "headline-25-seed1",
                                                                             "headline-25-20m"}


def test_the_horizon_check_races_again_with_the_from_scratch_arm_at_its_better_rate(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results"
    # headline-50-seed2's sweep kept 0.004, ending at 60, below the teacher's 70
    fake_run(runs, "headline-50-seed2", {"random": [1000.0, 300.0, 60.0], "student": [200.0, 80.0, 55.0]}, True)
    result = json.loads((runs / "headline-50-seed2" / "eval.json").read_text())
    result["comparison"]["arms"]["random"]["lr"] = "0.004"  # a higher rate than the check's
    result["teacher"]["perplexity"] = 70.0
    (runs / "headline-50-seed2" / "eval.json").write_text(json.dumps(result))
    assert "Not yet run: horizon-50-seed2 (`bash recipes/study/run.sh horizon-50-seed2`)." in report_of(runs, out)
    check = runs / "horizon-50-seed2" / "lr0.002"
    fake_curve(check, [1000.0, 200.0, 50.0], "random")  # the other rate ends lower: the arm races at it
    (check / "summary.json").write_text(json.dumps({"hardware": "test"}))
    report = report_of(runs, out)
    part = report[report.index("## The from-scratch rate at the full budget"):]
    assert "From scratch for 2,000 tokens: 60.00 at lr 0.004, 50.00 at lr 0.002 (the 1M-token sweep kept 0.004" in part
    raw = json.loads((out / "study.json").read_text())["The from-scratch rate at the full budget"]["headline-50-seed2"]
    assert raw["target_perplexity"] == 60.0 and raw["arms"]["random"]["run"] == str(check)
    # to 60: from scratch at 1000 * (1 + log(200/60) / log(200/50)) = 1,868 tokens, the student at
    # 1000 * (1 + log(80/60) / log(80/55)) = 1,768: 1.057x
    assert f"{raw['arms']['student']['to_reference']['tokens_ratio']:.3f}" == "1.057"
    assert raw["to_teacher"]["target_perplexity"] == 70.0 and "trained on test" in part
    assert "raced to the teacher's perplexity" in part


def test_a_horizon_check_of_a_run_whose_folders_are_gone_races_its_arms_as_the_last_report_had_them(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results"
    fake_run(runs, "headline-50", {"random": [1000.0, 300.0, 60.0], "student": [200.0, 80.0, 55.0]}, True)
    assert "Not yet run: horizon-50 (`bash recipes/study/run.sh horizon-50`)." in report_of(runs, out)
    check = tmp_path / "check" / "horizon-50" / "lr0.004"
    fake_curve(check, [1000.0, 200.0, 50.0], "random")  # the other rate ends lower: the arm races at it
    (check / "summary.json").write_text(json.dumps({"hardware": "test"}))
    shutil.copytree(check.parent, runs / "horizon-50")
    horizon = "## The from-scratch rate at the full budget"
    live = report_of(runs, out).split(horizon)[1]
    assert "From scratch for 2,000 tokens: 60.00 at lr 0.002, 50.00 at lr 0.004 (the 1M-token sweep kept 0.002" in live
    raw_live = json.loads((out / "study.json").read_text())[horizon[3:]]["headline-50"]
    shutil.rmtree(runs / "headline-50")  # only results/ kept of the run: its arms race as the report had them
    assert report_of(runs, out).split(horizon)[1] == live
    assert json.loads((out / "study.json").read_text())[horizon[3:]]["headline-50"] == raw_live
    assert raw_live["arms"]["random"]["run"] == str(runs / "horizon-50" / "lr0.004")
    assert f"{raw_live['arms']['student']['to_reference']['tokens_ratio']:.3f}" == "1.057"  # as the test above
    assert "| 50% | from scratch's final | sub-network + KD | 1.06x |" in live  # the summary, at the better rate
