"""Every student headstart writes is an ordinary causal LM in plain transformers (no headstart installed).

Uniform and layer-wise students of each family are extracted from tiny teachers that carry a
tokenizer, special-token ids and a generation config (its stop token one the student's greedy
continuation of a prompt reaches, so that stopping is seen); tests/plain_transformers_student.py then
loads each folder in a process where headstart cannot be imported, generates with the stop
token, scores a left-padded batch and saves it again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
import transformers
from conftest import TINY_CONFIGS, VOCAB, save_tiny, tiny_hf_model
from tokenizers import Tokenizer, models, pre_tokenizers

from headstart.model import load_model
from headstart.model.card import read_card_facts
from headstart.model.decoder import Decoder
from headstart.subnet import extract, extract_to_folder
from headstart.subnet.spec import SubnetSpec, parse_spec

PROMPT = 4  # prompt length


def specs(teacher: Decoder) -> dict[str, SubnetSpec]:
    cfg = teacher.config
    last = cfg.n_layer - 1
    return {"uniform": parse_spec({"layers": cfg.n_layer - 1, "mlp": cfg.layers[0].mlp // 2}, cfg),  # a layer less
            "layerwise": parse_spec({"layers": [{"layer": 0, "mlp": 8}, {"layer": last, "heads": cfg.layers[0].n_kv}]},
                                    cfg)}


def greedy_stop(model: Decoder, seed: int) -> tuple[list[int], int]:
    """A prompt and a stop token that its greedy continuation emits third (first time), for a random model."""
    prompts = torch.randint(1, VOCAB, (64, PROMPT), generator=torch.Generator().manual_seed(seed))
    ids = prompts
    with torch.no_grad():
        for _ in range(3):
            ids = torch.cat((ids, model(ids)[:, -1].argmax(-1, keepdim=True)), 1)
    row = next(i for i, r in enumerate(ids.tolist()) if r[-1] not in r[PROMPT:-1])
    return prompts[row].tolist(), int(ids[row, -1])


def teacher_folder(family: str, spec_kind: str, folder: Path, seed: int) -> tuple[Path, list[int]]:
    """A tiny teacher whose tokenizer, config and generation config name as eos a token its student emits."""
    hf = tiny_hf_model(family)
    with torch.no_grad():  # weights of std 0.02 give a tiny model one favourite token; larger ones give variety
        for p in hf.parameters():
            p.mul_(15 if p.dim() == 2 else 1)
    hf.save_pretrained(folder)
    teacher = load_model(folder)
    prompt, stop = greedy_stop(extract(teacher, specs(teacher)[spec_kind]), seed)
    words = [f"w{i}" for i in range(1, teacher.config.vocab_size)]  # Phi-3's is larger than VOCAB
    tok = Tokenizer(models.WordLevel({"[UNK]": 0} | {w: i + 1 for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    eos = words[stop - 1]
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token=eos,
                                         bos_token=eos).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text()) | {"bos_token_id": stop, "eos_token_id": stop}
    (folder / "config.json").write_text(json.dumps(config))
    generation = {"bos_token_id": stop, "eos_token_id": stop, "temperature": 0.7}  # temperature: a mark of its own
    (folder / "generation_config.json").write_text(json.dumps(generation))
    return folder, prompt


def test_every_student_loads_generates_scores_padded_batches_and_saves_in_plain_transformers(tmp_path):
    cases, kinds = {}, {}
    for family in TINY_CONFIGS:
        for kind in ("uniform", "layerwise"):
            folder, prompt = teacher_folder(family, kind, tmp_path / f"teacher-{family}-{kind}", seed=len(cases))
            teacher = load_model(folder)
            out = extract_to_folder(teacher, specs(teacher)[kind], tmp_path / f"{family}-{kind}")
            cases[str(out)], kinds[str(out)] = {"teacher": str(folder), "prompt": prompt}, kind
            config, teacher_config = (json.loads((d / "config.json").read_text()) for d in (out, folder))
            assert config["eos_token_id"] == config["bos_token_id"] == teacher_config["eos_token_id"]
            assert "torch_dtype" not in config and config["dtype"] == "float32"
            assert config.get("max_position_embeddings", config.get("n_positions")) == 64  # GPT-2 says n_positions
            assert json.loads((out / "generation_config.json").read_text())["temperature"] == 0.7
            assert "headstart" in (out / "README.md").read_text()
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    script = Path(__file__).with_name("plain_transformers_student.py")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "cases.json")], capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line.removeprefix("RESULT ")) for line in done.stdout.splitlines()
               if line.startswith("RESULT ")]
    assert [r["folder"] for r in results] == list(cases)
    for r in results:
        layerwise = kinds[r["folder"]] == "layerwise"
        assert (r["class"] == "HeadstartForCausalLM") == layerwise, r
        # transformers 5's AutoTokenizer reads config.json through AutoConfig before the tokenizer's files, and
        # AutoConfig asks before running the code a layer-wise config names (declined, the tokenizer loads all the
        # same: the teacher's, checked); stock folders never ask
        assert r["asked"] == layerwise, r


def test_large_students_are_sharded_with_an_index_and_load_back(tmp_path):
    save_tiny("llama", tmp_path / "teacher")
    teacher = load_model(tmp_path / "teacher")
    out = extract_to_folder(teacher, specs(teacher)["layerwise"], tmp_path / "student", max_shard_size=4000)
    shards = sorted(p.name for p in out.glob("*.safetensors"))
    assert len(shards) > 1 and (out / "model.safetensors.index.json").is_file()
    expected = extract(teacher, specs(teacher)["layerwise"])
    ids = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(load_model(out)(ids), expected(ids))
        remote = transformers.AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)
        assert (remote(ids).logits - expected(ids)).abs().max() < 1e-5
    card = read_card_facts(out)
    assert card["teacher"] == str(tmp_path / "teacher") and card["parameters"] == sum(
        p.numel() for p in expected.parameters())


def test_push_to_hub_without_a_network_is_one_line_and_exit_2_after_the_folder_is_written(tmp_path, monkeypatch,
                                                                                         capsys):
    import huggingface_hub.constants

    from headstart.cli.main import main

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    save_tiny("llama", tmp_path / "teacher")
    (tmp_path / "spec.json").write_text('{"layers": 2}')
    argv = ["extract", "--teacher", str(tmp_path / "teacher"), "--spec", str(tmp_path / "spec.json"), "--out"]
    assert main([*argv, str(tmp_path / "bad"), "--push-to-hub", "not a repo id"]) == 2
    assert "is not a hub repo id" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main([*argv, str(tmp_path / "student"), "--push-to-hub", "me/student"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot push" in err and "hf upload me/student" in err, err
    assert (tmp_path / "student" / "config.json").is_file()  # nothing lost: push it later


def test_train_refuses_a_malformed_hub_repo_before_training(capsys):
    from headstart.cli.main import main

    argv = ["train", "--student", "s", "--data", "d", "--out", "o", "--tokens", "1000", "--push-to-hub", "bad id!"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a hub repo id" in err


def at_a_terminal(folders: list[Path], timeout: float = 120) -> dict[str, bool]:
    """Run plain_transformers_student.py --terminal on a pseudo-terminal, pressing Enter (no) at each question;
    for each tokenizer load ("plain FOLDER", "declined FOLDER"), whether transformers asked first."""
    import os
    import pty
    import select
    import time

    script = Path(__file__).with_name("plain_transformers_student.py")
    pid, fd = pty.fork()
    if pid == 0:  # the child: a user's python at a terminal
        os.execv(sys.executable, [sys.executable, str(script), "--terminal", *map(str, folders)])
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                if out.rstrip().endswith(b"[y/N]"):
                    os.write(fd, b"\n")
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace").replace("\r", "")
    assert os.waitstatus_to_exitcode(status) == 0, text[-3000:]
    asked = {}
    for part in text.split("\nLOADING ")[1:]:
        name = part.splitlines()[0]
        assert f"\nLOADED {name} " in part, part[-2000:]
        asked[name] = "Do you wish to run the custom code?" in part
    return asked


def test_at_a_terminal_only_a_layerwise_folder_asks_before_its_tokenizer_and_trust_remote_code_false_never(tmp_path):
    folders = {}
    for kind in ("uniform", "layerwise"):
        teacher, _ = teacher_folder("llama", kind, tmp_path / f"teacher-{kind}", seed=0)
        folders[kind] = extract_to_folder(load_model(teacher), specs(load_model(teacher))[kind], tmp_path / kind)
    asked = at_a_terminal(list(folders.values()))
    # transformers 5.24 reads config.json (through AutoConfig) before tokenizer_config.json, whatever the latter
    # says, and AutoConfig asks before the code a config names; README's export section says so
    assert asked == {f"plain {folders['uniform']}": False, f"declined {folders['uniform']}": False,
                     f"plain {folders['layerwise']}": True, f"declined {folders['layerwise']}": False}, asked
