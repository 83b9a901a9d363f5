"""A study recipe's student alone: its pipeline's importance, search and extract steps, run into OUT.

The horizon checks train a headline run's from-scratch arm again at another rate; they need its architecture,
which this makes again, the same search with the same seed, where the run's folders are gone (only results/
kept). Prints the student's folder last. Run: python recipes/study/student.py RECIPE OUT (RECIPE: its name here)
"""

from __future__ import annotations

import sys
from pathlib import Path

from headstart import api
from headstart.pipeline import load_pipeline, plan


def make_student(recipe: str, out: str) -> Path:
    for step in plan(load_pipeline(Path(__file__).with_name(f"{recipe}.yaml"), {"out": out})):
        if step.name in ("importance", "search", "extract"):
            print(api.COMMANDS[step.command][1](step.config).describe(), file=sys.stderr, flush=True)
    return Path(out) / "student"


if __name__ == "__main__":
    print(make_student(*sys.argv[1:3]))
