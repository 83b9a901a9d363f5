"""bench/gpu.sh's dry run on this CPU: the device check's script runs end to end and writes its results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from headstart.train.fused_kd import liger_installed

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_device_check_dry_runs_on_a_cpu_and_writes_its_results(tmp_path):
    env = os.environ | {"PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--dry-run", "--results", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert result["setup"]["dry_run"] and result["setup"]["device"] == "cpu"
    assert [r["variant"] for r in result["training"]] == ["eager", "activation checkpointing"]
    assert all(r["tokens_per_s"] > 0 and r["mfu"] is None for r in result["training"])  # a CPU has no peak
    assert set(result["search"]["rows"]) == {"fp32", "bf16"}
    assert result["search"]["max_relative_perplexity_difference"] < 0.01
    kernels = {"chunked"} | ({"liger"} if liger_installed() else set())  # liger: the KD loss alone, off CUDA too
    assert set(result["kd_loss"]["rows"]) == kernels
    assert all(r["seconds"] > 0 and r["peak_memory_gib"] is None for r in result["kd_loss"]["rows"].values())
    assert "Dry run" in (tmp_path / "gpu.md").read_text()


def test_the_device_check_refuses_to_measure_without_a_gpu_and_leaves_the_results_alone():
    results = ROOT / "bench" / "results" / "gpu.json"
    before = results.read_bytes()
    env = os.environ | {"PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "no CUDA GPU" in done.stderr
    assert results.read_bytes() == before
