"""A training process killed with SIGKILL at an arbitrary point resumes to exactly the loss curve of an unbroken run."""

import json

import pytest
from safetensors.torch import load_file
from train_support import json_lines_without, make_world, one_thread, run_cli, sigkill_when, train_argv  # noqa: F401

from headstart.cli.main import main

STEPS, SEQ, BATCH = 60, 16, 4


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("resume_world"))


def argv(world, out: str) -> list[str]:
    return train_argv(student=world["student"], data=world["data"], out=world["root"] / out, teacher=world["teacher"],
                      kd="forward_kl", tokens=STEPS * BATCH * SEQ, seq_len=SEQ, batch_size=BATCH, micro_batch_size=2,
                      lr=3e-3, eval_every=10, checkpoint_every=3, keep_checkpoints=2)


def curve(out) -> list[dict]:
    """Every metrics record without its wall-clock speed."""
    return json_lines_without(out / "metrics.jsonl", "tokens_per_s")


def kill_after_a_checkpoint(argv: list[str], out) -> int:
    """Start training, SIGKILL it once its second checkpoint exists; return the step it had checkpointed."""
    sigkill_when(argv, (out / "checkpoints" / "step-00000006").is_dir, "a second checkpoint")
    return max(int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("step-*"))


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_loss_curve_of_an_unbroken_run(world):
    assert main(argv(world, "unbroken")) == 0  # in this process, on one thread like the others

    out = world["root"] / "killed"
    checkpointed = kill_after_a_checkpoint(argv(world, "killed"), out)
    assert 6 <= checkpointed < STEPS and not (out / "summary.json").exists()
    resumed = run_cli([*argv(world, "killed"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr

    assert json.loads((out / "summary.json").read_text())["resumed_at"] == checkpointed
    assert curve(out) == curve(world["root"] / "unbroken")  # exactly: same bits, not just close
    ours, theirs = (load_file(world["root"] / name / "final" / "model.safetensors") for name in ("killed", "unbroken"))
    assert all((ours[k] == theirs[k]).all() for k in theirs)
