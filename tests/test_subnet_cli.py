"""`headstart extract`, `importance` and `space`: outputs that load, clear one-line errors, nothing half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers

from headstart.cli.main import main
from headstart.data import load_tokenizer, prepare_data
from headstart.model import load_model
from headstart.subnet import param_count
from headstart.subnet.importance import Importance

TEXT = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want "
        "of a wife. However little known the feelings or views of such a man may be on his first entering a "
        "neighbourhood, this truth is so well fixed in the minds of the surrounding families. ")


def write_corpus(folder: Path, n: int = 12) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"doc{i}.txt").write_text(TEXT * (3 + i % 4) + f" Chapter {i}.")
    return [str(folder)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """A tiny Llama teacher that shares its tokenizer with a prepared data folder."""
    root = tmp_path_factory.mktemp("cli")
    prepare_data(write_corpus(root / "text"), root / "data", train_vocab_size=300, val_fraction=0.2)
    tok = load_tokenizer(root / "data" / "tokenizer")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                   num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64)
    transformers.AutoModelForCausalLM.from_config(cfg).save_pretrained(root / "teacher")
    tok.save_pretrained(root / "teacher")
    return {"root": root, "teacher": root / "teacher", "data": root / "data"}


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main([*argv, "--json"])
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    return code, json.loads(lines[-1]) if code == 0 else None, out.err


def test_extract_writes_a_folder_that_loads_with_the_spec_size(setup, capsys, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"embd": 16, "layers": [0, 2], "heads": 2, "kv": 1, "mlp": 24}))
    code, summary, _ = run_cli(capsys, "extract", "--teacher", str(setup["teacher"]), "--spec", str(spec),
                               "--out", str(tmp_path / "student"))
    assert code == 0 and summary["stock_class"]
    student = load_model(tmp_path / "student")
    assert summary["params"] == sum(p.numel() for p in student.parameters())
    assert (tmp_path / "student" / "tokenizer.json").is_file()


def test_extract_and_a_reordered_teacher_keep_the_teachers_dtype_unless_asked(setup, capsys, tmp_path):
    """A bf16 teacher gives bf16 folders (its values, exactly: extraction only selects); --dtype chooses another."""
    bf16 = tmp_path / "bf16-teacher"
    shutil.copytree(setup["teacher"], bf16)
    transformers.AutoModelForCausalLM.from_pretrained(bf16, dtype=torch.bfloat16).save_pretrained(bf16)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"layers": [{"layer": 0, "mlp": 16}, {"layer": 2, "heads": 2, "kv": 1}]}))
    for dtype, expected in ((None, torch.bfloat16), ("float32", torch.float32)):
        out = tmp_path / f"student-{dtype}"
        asked = ["--dtype", dtype] if dtype else []
        assert run_cli(capsys, "extract", "--teacher", str(bf16), "--spec", str(spec), "--out", str(out), *asked)[0] \
            == 0
        assert json.loads((out / "config.json").read_text())["dtype"] == str(expected).removeprefix("torch.")
        assert {p.dtype for p in load_model(out, dtype=None).parameters()} == {expected}
    student, wide = (load_model(tmp_path / f"student-{d}") for d in (None, "float32"))
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), wide.state_dict().values(),
                                                     strict=True))
    code, summary, _ = run_cli(capsys, "importance", "--teacher", str(bf16), "--data", str(setup["data"]),
                               "--out", str(tmp_path / "imp"), "--tokens", "256", "--seq-len", "32", "--write-teacher")
    assert code == 0 and {p.dtype for p in load_model(summary["teacher"], dtype=None).parameters()} == {torch.bfloat16}


def test_extract_takes_the_spec_itself_as_json(setup, capsys, tmp_path):
    code, _, _ = run_cli(capsys, "extract", "--teacher", str(setup["teacher"]), "--spec", '{"layers": [0, 2]}',
                         "--out", str(tmp_path / "student"))
    assert code == 0 and load_model(tmp_path / "student").config.n_layer == 2
    code, _, err = run_cli(capsys, "extract", "--teacher", str(setup["teacher"]), "--spec", '{"layers": [0, 2]',
                           "--out", str(tmp_path / "other"))
    assert code == 2 and "spec is not valid JSON" in err and not (tmp_path / "other").exists()


def test_extract_with_a_bad_spec_exits_2_with_one_line_and_writes_nothing(setup, capsys, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"layers": [{"layer": 0, "heads": [0, 2], "kv": [0]}]}))
    code, _, err = run_cli(capsys, "extract", "--teacher", str(setup["teacher"]), "--spec", str(spec),
                           "--out", str(tmp_path / "student"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "kept but the group is not" in err
    assert not (tmp_path / "student").exists()


def test_importance_writes_scores_and_a_reordered_teacher_with_the_same_logits(setup, capsys, tmp_path):
    code, summary, _ = run_cli(capsys, "importance", "--teacher", str(setup["teacher"]), "--data", str(setup["data"]),
                               "--out", str(tmp_path / "imp"), "--tokens", "256", "--seq-len", "32",
                               "--write-teacher")
    assert code == 0
    record = json.loads((tmp_path / "imp" / "importance.json").read_text())
    teacher, permuted = load_model(setup["teacher"]), load_model(summary["teacher"])
    scores = Importance.from_dict(record["activation"])
    assert scores.embd.shape == (teacher.config.n_embd,) and record["magnitude"]["method"] == "magnitude"
    assert not torch.equal(permuted.embed.weight, teacher.embed.weight)
    tokens = torch.randint(0, teacher.config.vocab_size, (2, 16))
    with torch.no_grad():
        assert (permuted(tokens) - teacher(tokens)).abs().max().item() <= 1e-5
    assert (Path(summary["teacher"]) / "tokenizer.json").is_file()


def test_importance_refuses_data_from_another_tokenizer(setup, capsys, tmp_path):
    prepare_data(write_corpus(tmp_path / "text"), tmp_path / "other", train_vocab_size=280, val_fraction=0.2)
    code, _, err = run_cli(capsys, "importance", "--teacher", str(setup["teacher"]), "--data", str(tmp_path / "other"),
                           "--out", str(tmp_path / "imp"))
    assert code == 2 and "tokenizer" in err
    assert not (tmp_path / "imp").exists()


def test_space_prints_its_size_and_samples_in_the_bin(setup, capsys):
    teacher = load_model(setup["teacher"])
    total = param_count(teacher.config)
    code, summary, _ = run_cli(capsys, "space", "--teacher", str(setup["teacher"]), "--space", "fine-layerwise",
                               "--budget", "60%", "--samples", "3", "--multiple", "4")
    assert code == 0 and summary["log10_size"] > 1 and len(summary["samples"]) == 3
    lo, hi = summary["budget"]
    assert all(lo <= s["params"] <= hi for s in summary["samples"]) and 0.58 * total < lo < 0.6 * total


@pytest.mark.parametrize(("argv", "words"), [
    (["--space", "coarse-uniform", "--budget", "lots"], "not a parameter count"),
    (["--space", "layers", "--budget", "1%"], "no layers sub-network has"),
])
def test_space_with_a_bad_budget_exits_2(setup, capsys, argv, words):
    code, _, err = run_cli(capsys, "space", "--teacher", str(setup["teacher"]), *argv)
    assert code == 2 and words in err


@pytest.mark.real_teacher
def test_extract_of_the_real_teacher_is_fast_and_exact(capsys, tmp_path):
    """On SmolLM2-135M (skipped when not fetched): a layer-wise student loads back with the activated logits."""
    from headstart.assets import require_asset
    from headstart.errors import UsageError

    try:
        require_asset("models", "smollm2-135m")
    except UsageError:
        pytest.skip("the SmolLM2-135M asset is not fetched")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"embd": 256, "layers": [{"layer": 0, "heads": 6, "kv": 2, "mlp": 512},
                                                        {"layer": 29, "heads": [0, 4, 8], "mlp": 64}]}))
    code, summary, _ = run_cli(capsys, "extract", "--teacher", "smollm2-135m", "--spec", str(spec),
                               "--out", str(tmp_path / "student"))
    assert code == 0 and not summary["stock_class"]
    from headstart.subnet import SubnetSpec, activate

    teacher = load_model("smollm2-135m")
    student = load_model(tmp_path / "student")
    tokens = torch.randint(0, 49152, (1, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = activate(teacher, SubnetSpec.from_dict(summary["spec"], teacher.config))(tokens)
        assert (student(tokens) - expected).abs().max().item() <= 1e-4
    shutil.rmtree(tmp_path / "student")
