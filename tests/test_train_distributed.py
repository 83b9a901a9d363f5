"""Two CPU ranks under torchrun (gloo), with DDP and with FSDP2 (teacher sharded too), match one process.

Same global batch: two ranks of two micro-batches of 2 windows each, against one process of
two micro-batches of 4. Losses and weights agree to float tolerance (reductions run in another order).
Checkpoints are sharded (torch.distributed.checkpoint) and resume on another number of ranks.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.distributed.checkpoint import FileSystemReader
from train_support import (  # noqa: F401 (one_thread: autouse)
    VOCAB,
    make_data,
    make_model,
    one_thread,
    run_cli,
    subprocess_env,
    train_argv,
    train_records,
)

from headstart.cli.main import main

SEQ, BATCH, STEPS = 16, 8, 6


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist_world")
    data = make_data(root)
    world = {"root": root, "data": data, "student": make_model(root / "student", root / "tokenizer"),
             "teacher": make_model(root / "teacher", root / "tokenizer", "teacher", seed=1)}
    assert main([*argv(world, "single"), "--micro-batch-size", "4"]) == 0
    return world


def argv(world, out: str) -> list[str]:
    return train_argv(student=world["student"], data=world["data"], out=world["root"] / out, teacher=world["teacher"],
                      kd="forward_kl", tokens=STEPS * BATCH * SEQ, seq_len=SEQ, batch_size=BATCH, micro_batch_size=2,
                      lr=3e-3, eval_every=3, checkpoint_every=3)


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_cpu_ranks_match_one_process_with_the_same_global_batch(world, parallel):
    result = run_cli([*argv(world, parallel), "--parallel", parallel], ranks=2)
    assert result.returncode == 0, result.stderr[-3000:]
    single, ranks = world["root"] / "single", world["root"] / parallel
    ours, theirs = train_records(ranks), train_records(single)
    assert [r["step"] for r in ours] == list(range(1, STEPS + 1))
    for key in ("loss", "ce", "kd", "grad_norm"):
        assert [r[key] for r in ours] == pytest.approx([r[key] for r in theirs], rel=1e-5), key
    assert ours[-1]["tokens"] == theirs[-1]["tokens"] == STEPS * BATCH * SEQ  # the ledger counts both ranks
    assert ours[-1]["teacher_flops"] == pytest.approx(theirs[-1]["teacher_flops"])
    a, b = (load_file(folder / "final" / "model.safetensors") for folder in (ranks, single))
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    metadata = FileSystemReader(ranks / "checkpoints" / f"step-{STEPS:08d}").read_metadata()
    assert metadata.state_dict_metadata["model.decoder.embed.weight"].size == (VOCAB, 32)  # the global shape
    assert json.loads((ranks / "summary.json").read_text())["steps"] == STEPS


def copy_run_until(source: Path, out: Path, step: int) -> None:
    """A copy of run `source` as if it had been stopped after checkpoint `step`."""
    shutil.copytree(source, out)
    for later in (out / "checkpoints").glob("step-*"):
        if int(later.name.split("-")[1]) > step:
            shutil.rmtree(later)
    (out / "summary.json").unlink()


def assert_same_curve(ours: list[dict], theirs: list[dict]) -> None:
    by_step = {r["step"]: r for r in theirs}
    for key in ("loss", "ce", "kd", "grad_norm"):
        assert [r[key] for r in ours] == pytest.approx([by_step[r["step"]][key] for r in ours], rel=1e-5), key


@pytest.mark.slow
def test_a_checkpoint_resumes_on_another_number_of_ranks_on_the_same_loss_curve(world):
    root, single = world["root"], train_records(world["root"] / "single")
    # 1 rank -> 2 FSDP2 ranks, each loading only its shards, checkpointing every step from here on, in the background
    copy_run_until(root / "single", root / "grown", 3)
    grown = run_cli([*argv(world, "grown"), "--parallel", "fsdp", "--checkpoint-every", "1", "--async-checkpoints",
                     "--resume"], ranks=2)
    assert grown.returncode == 0, grown.stderr[-3000:]
    assert json.loads((root / "grown" / "summary.json").read_text())["resumed_at"] == 3
    assert [r["step"] for r in train_records(root / "grown")] == list(range(1, STEPS + 1))
    assert_same_curve(train_records(root / "grown")[3:], single)
    # 2 ranks -> 1 rank, from the 2-rank checkpoint of step 5
    copy_run_until(root / "grown", root / "shrunk", 5)
    assert main([*argv(world, "shrunk"), "--micro-batch-size", "4", "--resume"]) == 0
    assert json.loads((root / "shrunk" / "summary.json").read_text())["resumed_at"] == 5
    assert_same_curve(train_records(root / "shrunk")[5:], single)
    ours, theirs = (load_file(root / name / "final" / "model.safetensors") for name in ("shrunk", "single"))
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-5)



WAIT_SCRIPT = """
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch.distributed as dist

from headstart.train.distributed import init_ranks, wait_for_main, waiting_group

# a main group that gives up quickly, though not before both ranks are up on a busy machine
dist.init_process_group("gloo", timeout=timedelta(seconds=10))
ranks = init_ranks()
group = waiting_group(ranks)
if ranks.is_main:
    time.sleep(15)  # a single-process step longer than the main group's timeout
wait_for_main(ranks, group)
(Path(sys.argv[1]) / f"rank {ranks.rank} waited").touch()  # a file each: the ranks' prints would interleave
"""


def test_ranks_wait_for_rank_0_longer_than_the_main_groups_timeout(tmp_path):
    script = tmp_path / "wait.py"
    script.write_text(WAIT_SCRIPT)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(script), str(tmp_path)], env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("rank *")) == ["rank 0 waited", "rank 1 waited"]
