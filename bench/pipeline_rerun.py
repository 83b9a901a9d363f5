"""What `make demo` reports and how long `headstart run` takes: the demo's recipe run once, again unchanged,
and again with one field changed (`--train.lr 0.003`).

Each is the command a user types, timed as a subprocess (start-up included), with the steps it ran and kept
in its own words. The first run's numbers are the ones the README quotes for the demo.
Run: python bench/pipeline_rerun.py [--out runs/bench-pipeline-rerun]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from common import write_results

HEADSTART = str(Path(sys.executable).with_name("headstart"))
RECIPE = "recipes/demo.yaml"
RAN = re.compile(r"^headstart run: (\S+(?: lr=\S+)?) \.\.\. \(")  # a step that runs; a kept one says `NAME: why`
KEPT = re.compile(r"^headstart run: (\S+(?: lr=\S+)?): .*(kept|skipped)$")


def timed_run(out: Path, *extra: str) -> dict:
    """One `headstart run` of the demo recipe: its wall time, the steps it ran and kept, and its --json summary."""
    argv = [HEADSTART, "run", "--config", RECIPE, "--out", str(out), "--json", *extra]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"pipeline_rerun: {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    lines = done.stdout.splitlines()
    return {"command": " ".join(["headstart", *argv[1:]]), "seconds": round(seconds, 1),
            "ran": [m.group(1) for m in map(RAN.match, lines) if m],
            "kept": [m.group(1) for m in map(KEPT.match, lines) if m], "summary": json.loads(lines[-1])}


def demo_numbers(summary: dict) -> dict:
    """The headline of the first run: teacher, sub-network untrained and trained, and each arm as the report has it."""
    arms = summary["comparison"]["arms"]
    return {"teacher_perplexity": summary["teacher"]["perplexity"], "tokens_scored": summary["tokens_scored"],
            "subnetwork_params": summary["subnetwork"]["params"],
            "subnetwork_untrained": summary["subnetwork"]["perplexity_untrained"],
            "arms": {name: {k: arm[k] for k in ("label", "params", "lr", "sweep", "perplexity", "tokens", "flops")}
                     for name, arm in arms.items()}}


def markdown(runs: list[dict], demo: dict) -> str:
    rows = "\n".join(f"| `{r['command']}` | {r['seconds']:.1f} | {len(r['ran'])}: {', '.join(r['ran']) or '-'} | "
                     f"{len(r['kept'])} |" for r in runs)
    arms = "\n".join(f"| {a['label']} | {a['params'] / 1e6:.2f}M | {a['lr']} | {a['perplexity']:.2f} | "
                     f"{a['tokens']:,} | {a['flops'] / 1e12:.2f}T |"
                     + (f" {', '.join(f'{lr}: {p:.2f}' for lr, p in a['sweep'].items())} |" if a["sweep"] else " - |")
                     for a in demo["arms"].values())
    return f"""`headstart run` on `{RECIPE}` (what `make demo` runs; the corpus fetched beforehand), timed as the
command a user types: first into an empty folder, then the same command again, then with one field changed.

| command | seconds | steps run | steps kept |
|---|---|---|---|
{rows}

The first run, all on the same {demo['tokens_scored']:,} held-out tokens: teacher perplexity
{demo['teacher_perplexity']:.2f}; best sub-network ({demo['subnetwork_params'] / 1e6:.2f}M)
{demo['subnetwork_untrained']:.2f} untrained. FLOPs count student forward + backward and teacher forward.

| arm | parameters | lr | perplexity | tokens | FLOPs | sweep (final perplexity by lr) |
|---|---|---|---|---|---|---|
{arms}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/bench-pipeline-rerun", help="pipeline folder (must not exist)")
    out = Path(parser.parse_args().out)
    if out.exists():
        sys.exit(f"pipeline_rerun: {out} exists; give --out a new folder (each run starts from an empty one)")
    subprocess.run([HEADSTART, "assets", "--only", "corpus"], check=True, capture_output=True)
    runs = [timed_run(out), timed_run(out), timed_run(out, "--train.lr", "0.003")]
    demo = demo_numbers(runs[0]["summary"])
    write_results("pipeline_rerun", {"runs": [{k: v for k, v in r.items() if k != "summary"} for r in runs],
                                     "demo": demo}, markdown(runs, demo))


if __name__ == "__main__":
    main()
