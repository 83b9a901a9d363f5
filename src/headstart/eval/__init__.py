"""Evaluation: perplexity on held-out token windows; zero-shot accuracy on downstream tasks (downstream.py)."""

from headstart.eval.perplexity import EvalResult, evaluate_windows
from headstart.eval.windows import scoring_windows

__all__ = ["EvalResult", "evaluate_windows", "scoring_windows"]
