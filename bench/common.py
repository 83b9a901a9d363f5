"""What every benchmark shares: a description of the machine, timing, and writing results."""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from headstart.atomic import write_json_atomic, write_text_atomic
from headstart.runtime import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_average_1min": round(os.getloadavg()[0], 2)}  # other work sharing the machine


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0]), *sys.argv[1:]])


def best_seconds(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """The fastest of `repeats` timed calls of each function, taking turns (a, b, a, b, ...).

    Taking turns and keeping the minimum make a ratio fair on a machine whose load changes.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def write_results(name: str, results: dict, markdown_body: str, folder: Path = RESULTS) -> None:
    """FOLDER/<name>.json and .md (bench/results by default), both naming the machine and the command that made them."""
    meta = {"machine": machine(), "command": command(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    write_json_atomic(folder / f"{name}.json", meta | results)
    m = meta["machine"]
    header = (f"# {name}\n\nMachine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} "
              f"({m['torch_threads']} threads){', GPU ' + m['gpu'] if m['gpu'] else ''}, "
              f"load average {m['load_average_1min']} when written.  \n"
              f"Command: `{meta['command']}`  \nDate: {meta['date']}\n\n")
    write_text_atomic(folder / f"{name}.md", header + markdown_body.strip() + "\n")
