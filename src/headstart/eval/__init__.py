"""Evaluation: perplexity on held-out token windows (downstream tasks come later)."""

from headstart.eval.perplexity import EvalResult, evaluate_windows
from headstart.eval.windows import scoring_windows

__all__ = ["EvalResult", "evaluate_windows", "scoring_windows"]
