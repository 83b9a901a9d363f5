"""scripts/ship_teacher.py: a trained run becomes a bf16 Hugging Face folder with its evaluation, curve and card."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file
from train_support import make_data, one_thread, subprocess_env  # noqa: F401 (one_thread: autouse)

from headstart.assets import corpus_files
from headstart.cli.main import main
from headstart.errors import UsageError
from headstart.eval.text import evaluate_text
from headstart.model import load_model
from headstart.settings import make
from headstart.train import train
from headstart.train.config import TrainConfig

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "ship_teacher.py"
SEQ = 32
ARCHITECTURE = {"model_type": "gpt_neox", "vocab_size": 42, "hidden_size": 32, "num_hidden_layers": 2,
                "num_attention_heads": 4, "intermediate_size": 64, "rotary_pct": 0.25,
                "max_position_embeddings": 256, "use_parallel_residual": True, "tie_word_embeddings": False}


def persuasion() -> Path:
    try:
        return next(p for p in corpus_files(["austen"]) if p.name == "persuasion.txt")
    except UsageError:
        pytest.skip("the corpus is not fetched (run `headstart assets`)")


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    """A teacher run and a shorter quarter run on tiny data, shipped by the script as run.sh does."""
    if not SCRIPT.is_file():
        pytest.skip("no scripts/ beside the installed package")
    persuasion()
    root = tmp_path_factory.mktemp("ship")
    data = make_data(root)
    (root / "architecture.json").write_text(json.dumps(ARCHITECTURE))
    assert main(["init", "--architecture", str(root / "architecture.json"), "--tokenizer", str(root / "tokenizer"),
                 "--out", str(root / "init"), "--seed", "0"]) == 0
    for name, steps in (("teacher", 8), ("quarter", 4)):
        train(make(TrainConfig, {"student": root / "init", "data": data, "out": root / name,
                                 "tokens": steps * 8 * SEQ, "seq_len": SEQ, "batch_size": 8, "micro_batch_size": 8,
                                 "eval_every": 4, "eval_tokens": 256}))
    done = subprocess.run([sys.executable, str(SCRIPT), str(root / "teacher"), str(root / "shipped"),
                           "--compare", str(root / "quarter")], capture_output=True, text=True,
                          env=subprocess_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return root


def test_the_folder_holds_bf16_weights_that_plain_transformers_loads(shipped):
    out = shipped / "shipped"
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "GPTNeoXForCausalLM"
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert len(tok) == ARCHITECTURE["vocab_size"]
    # its stop token is its tokenizer's end of text (not GPT-NeoX's default, 2), in config and generation config
    assert model.config.eos_token_id == model.generation_config.eos_token_id == tok.eos_token_id is not None
    assert (out / "generation_config.json").is_file()
    assert {t.dtype for t in load_file(out / "model.safetensors").values()} == {torch.bfloat16}
    assert (out / "training_curve.png").stat().st_size > 0


def test_the_card_states_the_run_and_the_perplexity_of_the_shipped_weights(shipped):
    out = shipped / "shipped"
    evaluation = json.loads((out / "evaluation.json").read_text())
    again = evaluate_text(load_model(out), persuasion(), evaluation["tokens"], evaluation["seq_len"])
    assert again.perplexity == pytest.approx(evaluation["perplexity"], rel=1e-4)
    teacher, quarter = (json.loads((shipped / run / "summary.json").read_text()) for run in ("teacher", "quarter"))
    card = (out / "README.md").read_text()
    for fact in (f"{teacher['tokens']:,}", f"{teacher['val_ppl']:.2f}", f"{evaluation['perplexity']:.2f}",
                 f"on {teacher['hardware']}, {teacher['compute']}", f"{quarter['val_ppl']:.2f}",
                 "a run outside a git checkout", '"seq_len": 32'):
        assert fact in card, fact


def test_the_run_is_clean_whatever_the_folder_being_shipped_holds(tmp_path):
    spec = importlib.util.spec_from_file_location("ship_teacher", SCRIPT)
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    repo, shipped = tmp_path / "checkout", tmp_path / "checkout" / "teachers" / "scale-teacher"
    shipped.mkdir(parents=True)
    (shipped / "model.safetensors").write_text("the teacher before")
    (repo / ".gitignore").write_text("runs/\n")
    (repo / "runs" / "train").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "a checkout"]):
        subprocess.run([*git, *args], check=True)
    (shipped / "model.safetensors").write_text("the teacher being replaced")
    assert ship.provenance(repo / "runs" / "train", shipped).endswith("(clean)")
    (repo / "loop.py").write_text("a change to the code that trained it")
    assert ship.provenance(repo / "runs" / "train", shipped).endswith("(with uncommitted changes)")
    assert ship.provenance(tmp_path, shipped) == "a run outside a git checkout"
