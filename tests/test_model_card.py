"""Model cards: `headstart eval` puts its numbers on the card of a student headstart wrote, and nowhere else."""

from __future__ import annotations

import json
import shutil

import pytest
from huggingface_hub import ModelCard
from train_support import make_data, make_model, one_thread  # noqa: F401 (one_thread: autouse)

from headstart import api
from headstart.cli.main import main
from headstart.model.card import CARD_FILE, EVALUATION, read_card_facts


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """Prepared data, a Llama teacher of its tokenizer, and a layer-wise student extracted from it."""
    root = tmp_path_factory.mktemp("card")
    data = make_data(root, n_docs=20, length=100)
    teacher = make_model(root / "teacher", root / "tokenizer", "teacher", seed=1)
    (root / "spec.json").write_text(json.dumps({"layers": [{"layer": 0, "mlp": 32}, {"layer": 2}]}))
    api.extract(teacher=str(teacher), spec=str(root / "spec.json"), out=str(root / "student"))
    return {"root": root, "data": data, "teacher": teacher, "student": root / "student"}


def test_eval_puts_its_numbers_on_a_students_card_and_a_rerun_replaces_them(made, evalsets, tmp_path, capsys):
    student = tmp_path / "student"
    shutil.copytree(made["student"], student)
    facts = read_card_facts(student)
    argv = ["eval", "--model", str(student), "--data", str(made["data"]), "--seq-len", "16", "--json"]
    assert main([*argv, "--tokens", "64", "--tasks", "piqa", "--limit", "2"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["card"] == str(student / CARD_FILE)
    card = ModelCard.load(student / CARD_FILE)
    numbers = card.data.to_dict()[EVALUATION]
    assert numbers["perplexity"] == {"data": str(made["data"]), "split": "validation", "tokens": 64, "seq_len": 16,
                                     "loss": first["loss"], "perplexity": first["perplexity"]}
    assert numbers["tasks"]["piqa"] == {k: first["tasks"]["piqa"][k] for k in ("items", "acc", "acc_norm", "acc_bytes",
                                                                              "chance")} | {
        "split": "validation", "scored_by": "headstart"}
    index = {(r.dataset_type, r.metric_type): r for r in card.data.eval_results}  # the hub's model-index
    assert index[("data", "perplexity")].metric_value == first["perplexity"]
    assert index[("piqa", "acc_norm")].metric_value == first["tasks"]["piqa"]["acc_norm"]
    assert index[("piqa", "acc")].dataset_split == "validation"
    assert f"{first['perplexity']:.2f} (loss {first['loss']:.4f})" in card.text
    assert read_card_facts(student) == facts  # what extract wrote stays, and training would not inherit the numbers

    assert main([*argv, "--tokens", "32", "--tasks", "arc_easy", "--limit", "3"]) == 0  # a rerun, other settings
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    card = ModelCard.load(student / CARD_FILE)
    numbers = card.data.to_dict()[EVALUATION]
    assert numbers["perplexity"]["tokens"] == 32 and numbers["perplexity"]["loss"] == second["loss"]  # replaced
    assert set(numbers["tasks"]) == {"piqa", "arc_easy"} and numbers["tasks"]["arc_easy"]["items"] == 3  # piqa kept
    assert len(card.data.eval_results) == 2 + 2 * 3  # perplexity and loss; three accuracies of each task
    assert card.text.count("## Evaluation") == 1 and card.text.count("| perplexity |") == 1
    assert read_card_facts(student) == facts
    assert sorted(p.name for p in student.iterdir()) == sorted(p.name for p in made["student"].iterdir())  # no temp


def test_eval_leaves_a_teacher_and_a_foreign_folder_as_they_were(made, tmp_path):
    teacher = tmp_path / "teacher"
    shutil.copytree(made["teacher"], teacher)
    before = sorted(p.name for p in teacher.iterdir())
    scored = api.evaluate(model=str(teacher), data=str(made["data"]), tokens=32, seq_len=16)
    assert scored.card is None and sorted(p.name for p in teacher.iterdir()) == before  # no card written
    foreign = tmp_path / "foreign"
    shutil.copytree(made["student"], foreign)
    (foreign / CARD_FILE).write_text("---\nlicense: mit\n---\n# Someone's own card\n")
    assert api.evaluate(model=str(foreign), data=str(made["data"]), tokens=32, seq_len=16).card is None
    assert (foreign / CARD_FILE).read_text() == "---\nlicense: mit\n---\n# Someone's own card\n"


def test_a_readme_without_a_metadata_block_is_not_a_card_and_reads_without_a_warning(tmp_path, caplog):
    (tmp_path / CARD_FILE).write_text("# scale-teacher\n\nA model card written by hand.\n")
    with caplog.at_level("WARNING"):
        assert read_card_facts(tmp_path) == {}
    assert not caplog.records  # huggingface_hub's "Repo card metadata block was not found" reached every train
