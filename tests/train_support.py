"""Tiny prepared data, students and teachers for the training tests, and a way to run `headstart train`.

The corpus is a seeded Markov chain over a few dozen words, so there is something to learn
in a few steps; models are transformers' own classes saved with the word-level tokenizer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from conftest import word_tokenizer
from transformers import PreTrainedTokenizerFast

from headstart.data.prepare import prepare_data

N_WORDS = 40
VOCAB = N_WORDS + 2  # eos, [UNK], w0..w{N-1}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on one thread: on a busy two-core machine, two threads make each small op 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



def markov_documents(n_docs: int, length: int, seed: int, n_words: int = N_WORDS) -> list[str]:
    """Each word mostly picks one of three successors: a pattern a tiny model learns in a few steps."""
    rng = np.random.default_rng(seed)
    successors = rng.integers(0, n_words, (n_words, 3))
    docs = []
    for _ in range(n_docs):
        word, words = int(rng.integers(n_words)), []
        for _ in range(length):
            words.append(f"w{word}")
            word = int(successors[word, rng.integers(3)]) if rng.random() < 0.9 else int(rng.integers(n_words))
        docs.append(" ".join(words))
    return docs


def make_data(root: Path, n_words: int = N_WORDS, seed: int = 0, n_docs: int = 40, length: int = 200) -> Path:
    """A prepared data folder (about n_docs x length tokens) and its tokenizer in root/tokenizer."""
    tok = word_tokenizer(root / "tokenizer", n_words)
    corpus = root / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": t}) for t in markov_documents(n_docs, length, seed, n_words)))
    prepare_data([str(corpus)], root / "data", tokenizer=str(tok), val_fraction=0.1, seed=seed)
    return root / "data"


def hf_config(kind: str, vocab: int) -> transformers.PretrainedConfig:
    if kind == "student":  # GPT-NeoX, as an extracted Pythia sub-network would be
        return transformers.GPTNeoXConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                          intermediate_size=64, rotary_pct=0.25, max_position_embeddings=64,
                                          tie_word_embeddings=False)
    return transformers.LlamaConfig(vocab_size=vocab, hidden_size=48, num_hidden_layers=3, num_attention_heads=6,
                                    num_key_value_heads=2, head_dim=8, intermediate_size=96,
                                    max_position_embeddings=64, tie_word_embeddings=True)


def make_model(folder: Path, tokenizer_dir: Path | None, kind: str = "student", vocab: int = VOCAB,
               seed: int = 0) -> Path:
    """A random HF model folder (`kind` student: GPT-NeoX, teacher: Llama with GQA) with the tokenizer beside it."""
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(hf_config(kind, vocab), dtype=torch.float32)
    model.save_pretrained(folder)
    if tokenizer_dir is not None:
        PreTrainedTokenizerFast.from_pretrained(tokenizer_dir).save_pretrained(folder)
    return folder


def make_world(root: Path) -> dict:
    """Prepared data, a GPT-NeoX student and a Llama teacher (GQA), all of one tokenizer, under root."""
    data = make_data(root)
    return {"root": root, "data": data, "student": make_model(root / "student", root / "tokenizer"),
            "teacher": make_model(root / "teacher", root / "tokenizer", "teacher", seed=1)}


def make_search_world(root: Path) -> dict:
    """A tiny teacher, its data and a finished 6-candidate random search of it: what select and the
    fidelity study start from."""
    from headstart.cli.main import main

    data = make_data(root, n_docs=20, length=120)
    teacher = make_model(root / "teacher", root / "tokenizer", "teacher", seed=1)
    search = root / "search"
    assert main(["search", "--teacher", str(teacher), "--data", str(data), "--budget", "50%", "--strategy",
                 "random", "--evals", "6", "--tokens", "128", "--seq-len", "16", "--out", str(search)]) == 0
    return {"root": root, "data": data, "teacher": teacher, "search": search}


def train_argv(**fields) -> list[str]:
    """`headstart train` arguments from field=value pairs (True: a bare flag)."""
    argv = ["train"]
    for key, value in fields.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def subprocess_env() -> dict[str, str]:
    """One thread per process: the same arithmetic in every run, and two ranks fit on two cores."""
    return os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_cli(argv: list[str], ranks: int = 1, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `headstart ...` in a fresh process, or under torchrun with `ranks` processes."""
    if ranks == 1:
        cmd = [sys.executable, "-m", "headstart", *argv]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
               "-m", "headstart", *argv]
    return subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)


def train_records(out: Path) -> list[dict]:
    """The training records (not validation) of a run's metrics.jsonl."""
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "loss" in r]


def json_lines_without(path: Path, *keys: str) -> list[dict]:
    """Every record of a JSON-lines file without the given keys (wall times, timestamps: they differ per run)."""
    return [{k: v for k, v in json.loads(line).items() if k not in keys} for line in path.read_text().splitlines()]


def sigkill_when(argv: list[str], ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Run `headstart ARGV` in a fresh process and SIGKILL it as soon as `ready()` (polled every 2 ms)."""
    proc = subprocess.Popen([sys.executable, "-m", "headstart", *argv], env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, f"the command ended before {what}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()


def kd_config(world: dict, out: str, steps: int, seq_len: int, batch_size: int, **more):
    """A TrainConfig distilling world's student from its teacher for `steps` steps, into world's root/out."""
    from headstart.settings import make
    from headstart.train.config import TrainConfig

    return make(TrainConfig, {"student": world["student"], "data": world["data"], "out": world["root"] / out,
                              "teacher": world["teacher"], "kd": "forward_kl", "tokens": steps * batch_size * seq_len,
                              "seq_len": seq_len, "batch_size": batch_size, "micro_batch_size": batch_size // 2,
                              "lr": 3e-3, "eval_every": 3, "checkpoint_every": 2, "keep_checkpoints": 4} | more)


PROSE = """It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in
want of a wife. However little known the feelings or views of such a man may be on his first entering a
neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is considered
the rightful property of some one or other of their daughters. My dear Mr. Bennet, said his lady to him one
day, have you heard that Netherfield Park is let at last? Mr. Bennet replied that he had not. But it is,
returned she; for Mrs. Long has just been here, and she told me all about it. Mr. Bennet made no answer.
Do you not want to know who has taken it? cried his wife impatiently. You want to tell me, and I have no
objection to hearing it. This was invitation enough."""


def prose_windows(tokenizer_file: Path, seq_len: int) -> torch.Tensor:
    """PROSE as evaluation windows [n, seq_len + 1] of a real tokenizer: text a trained model predicts well."""
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(tokenizer_file)).encode(PROSE).ids
    return torch.tensor([ids[i:i + seq_len + 1] for i in range(0, len(ids) - seq_len - 1, seq_len)])
