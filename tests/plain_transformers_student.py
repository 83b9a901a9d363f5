"""Use student folders as a user with only torch and transformers would: `python this.py CASES.json`.

headstart cannot be imported here (a finder refuses it), so the folders stand on their own.
For each folder: the tokenizer loads without custom code and is the teacher's (its vocabulary, special tokens,
chat template and the ids of a text); the model generates greedily with its generation config's stop token,
the same with and without the KV cache; a left-padded batch scores as its rows do alone; save_pretrained and
from_pretrained give the same logits, also after resize_token_embeddings. CASES.json maps each folder to its
teacher's folder and a prompt whose greedy continuation meets the stop token. Prints one line "RESULT {json}"
per folder ("asked": whether transformers asked to run the folder's code on the way to its tokenizer); any
failed check raises.

`python this.py --terminal FOLDER...` loads each folder's tokenizer as a user at a terminal would,
then again with trust_remote_code=False, between marker lines (tests/test_student_is_a_causal_lm.py
runs it on a pseudo-terminal and answers the questions).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import io
import json
import sys
import tempfile


class NoHeadstart(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "headstart" or name.startswith("headstart."):
            raise ImportError("headstart is not installed in this check")
        return None


sys.meta_path.insert(0, NoHeadstart())

import torch  # noqa: E402
import transformers  # noqa: E402


def tokenizer_of(folder: str, **kwargs: object) -> tuple[transformers.PreTrainedTokenizerBase, bool]:
    """AutoTokenizer's tokenizer of `folder`, and whether transformers asked to run the folder's code on the way
    (its question goes to stdout; stdin is no terminal here, so the question reads an end of file: declined)."""
    asked = io.StringIO()
    with contextlib.redirect_stdout(asked):
        tok = transformers.AutoTokenizer.from_pretrained(folder, **kwargs)
    return tok, "custom code" in asked.getvalue()


def check_tokenizer(folder: str, teacher_folder: str, text_ids: list[int]) -> tuple[
        transformers.PreTrainedTokenizerBase, bool]:
    """The folder's tokenizer, as loaded plainly, is the teacher's; declining custom code up front asks nothing."""
    teacher = transformers.AutoTokenizer.from_pretrained(teacher_folder)
    tok, asked = tokenizer_of(folder)  # without trust_remote_code
    declined, asked_declined = tokenizer_of(folder, trust_remote_code=False)
    assert not asked_declined, folder
    text = teacher.decode(text_ids) + " a word it lacks"
    for loaded in (tok, declined):
        assert type(loaded) is type(teacher), (folder, type(loaded), type(teacher))
        assert loaded.get_vocab() == teacher.get_vocab(), folder
        assert loaded.all_special_tokens == teacher.all_special_tokens, (folder, loaded, teacher)
        assert loaded.chat_template == teacher.chat_template, folder
        assert loaded(text)["input_ids"] == teacher(text)["input_ids"], (folder, text)
    return tok, asked


def check(folder: str, teacher_folder: str, prompt_ids: list[int]) -> dict:
    tok, asked = check_tokenizer(folder, teacher_folder, prompt_ids)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
    eos = model.generation_config.eos_token_id
    assert eos == tok.eos_token_id, (eos, tok.eos_token_id)
    prompt = torch.tensor([prompt_ids])
    with torch.no_grad():
        cached = model.generate(prompt, max_new_tokens=12, do_sample=False)
        uncached = model.generate(prompt, max_new_tokens=12, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached), (cached, uncached)
    new = cached[0, prompt.shape[1]:].tolist()
    assert new[-1] == eos and eos not in new[:-1] and len(new) < 12, new  # stopped at its stop token

    short, long = prompt[0, 2:], torch.cat((prompt[0], torch.tensor(new[:3])))
    pad = long.shape[0] - short.shape[0]
    ids = torch.stack((long, torch.cat((torch.zeros(pad, dtype=torch.long), short))))
    mask = torch.ones_like(ids)
    mask[1, :pad] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        batch = model(ids, attention_mask=mask, position_ids=positions).logits
        alone = [model(row[None]).logits[0] for row in (long, short)]
    padded_diff = max((batch[0] - alone[0]).abs().max().item(), (batch[1, pad:] - alone[1]).abs().max().item())
    assert padded_diff < 1e-4, padded_diff

    with tempfile.TemporaryDirectory() as again:
        model.save_pretrained(again)
        tok.save_pretrained(again)
        reloaded = transformers.AutoModelForCausalLM.from_pretrained(again, trust_remote_code=True).eval()
        with torch.no_grad():
            resaved_diff = (reloaded(long[None]).logits[0] - alone[0]).abs().max().item()
        assert resaved_diff < 1e-5, resaved_diff
        assert transformers.AutoTokenizer.from_pretrained(again).eos_token_id == eos
        # a vocabulary grown for new tokens (tied heads grow with the embedding): old tokens score as before,
        # and the grown folder loads back as it was
        vocab = model.config.vocab_size
        reloaded.resize_token_embeddings(vocab + 8, mean_resizing=False)
        with torch.no_grad():
            grown = reloaded(long[None]).logits[0]
        assert grown.shape[-1] == vocab + 8 and (grown[:, :vocab] - alone[0]).abs().max().item() < 1e-5
        reloaded.save_pretrained(again + "/grown")
        regrown = transformers.AutoModelForCausalLM.from_pretrained(again + "/grown", trust_remote_code=True).eval()
        with torch.no_grad():
            assert (regrown(long[None]).logits[0] - grown).abs().max().item() < 1e-5
    return {"folder": folder, "class": type(model).__name__, "generated": len(new), "padded_diff": padded_diff,
            "asked": asked}


def at_a_terminal(folders: list[str]) -> None:
    for folder in folders:
        for how, kwargs in (("plain", {}), ("declined", {"trust_remote_code": False})):
            print(f"\nLOADING {how} {folder}", flush=True)
            tok = transformers.AutoTokenizer.from_pretrained(folder, **kwargs)
            print(f"\nLOADED {how} {folder} {len(tok)}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--terminal":
        at_a_terminal(sys.argv[2:])
        sys.exit(0)
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    for folder, case in cases.items():
        print("\nRESULT", json.dumps(check(folder, case["teacher"], case["prompt"])), flush=True)
