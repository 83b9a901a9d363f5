"""Use student folders as a user with only torch and transformers would: `python this.py CASES.json`.

headstart cannot be imported here (a finder refuses it), so the folders stand on their own.
For each folder: the tokenizer loads without custom code; the model generates greedily with
its generation config's stop token, the same with and without the KV cache; a left-padded
batch scores as its rows do alone; save_pretrained and from_pretrained give the same logits.
CASES.json maps each folder to a prompt whose greedy continuation meets the stop token. Prints
one line "RESULT {json}" per folder; any failed check raises.
"""

from __future__ import annotations

import importlib.abc
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


def check(folder: str, prompt_ids: list[int]) -> dict:
    tok = transformers.AutoTokenizer.from_pretrained(folder)  # without trust_remote_code
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
    return {"folder": folder, "class": type(model).__name__, "generated": len(new), "padded_diff": padded_diff}


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    for folder, prompt_ids in cases.items():
        print("\nRESULT", json.dumps(check(folder, prompt_ids)), flush=True)  # a prompt leaves its line open
