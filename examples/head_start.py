"""search -> extract -> train -> evaluate from Python: a teacher's best sub-network, distilled and scored.

    python examples/head_start.py scale-teacher DATA runs/example   (DATA: a folder of `headstart prepare`)
"""

import sys
from pathlib import Path

from headstart import api


def head_start(teacher: str, data: str, out: str, budget: str = "25%", evals: int = 32, tokens: str = "300K",
               seq_len: int = 256, batch_size: int = 32, held_out: int = 65536) -> api.Evaluation:
    out = Path(out)  # each step below resumes (or keeps) what an earlier call wrote there
    found = api.search(teacher=teacher, data=data, budget=budget, evals=evals, tokens=held_out, seq_len=seq_len,
                       out=out / "search")
    student = api.extract(teacher=teacher, spec=found.best_json, out=out / "student")
    trained = api.train(student=student.out, data=data, teacher=teacher, kd="forward_kl", tokens=tokens,
                        seq_len=seq_len, batch_size=batch_size, micro_batch_size=batch_size, eval_tokens=held_out,
                        out=out / "train", resume=True)
    scores = api.evaluate(model=trained.final, data=data, tokens=held_out, seq_len=seq_len)
    print(f"{found.best['params'] / 1e6:.2f}M parameters: perplexity {found.best['perplexity']:.2f} untrained, "
          f"{scores.perplexity:.2f} after {trained.tokens:,} tokens of distillation")
    return scores


if __name__ == "__main__":
    head_start(*sys.argv[1:4])
