"""Is the head start worth it? Baseline arms beside the student, and the tokens and FLOPs each needs.

A pipeline recipe's `baselines:` section names arms (arms.py); `headstart run` trains each on the
same data order, seed, schedule, batch and token budget as the student, validated on the same
windows, and the report (report.py) says how many tokens and FLOPs each arm needs to reach the
from-scratch arm's final perplexity (crossing.py). fidelity.py asks whether a search's untrained
perplexity predicts trained quality (its candidates trained briefly with KD), and selects by successive halving.
"""

from headstart.compare.arms import ARMS, Arm, ArmPlan, parse_arms
from headstart.compare.crossing import Crossing, CurvePoint, first_crossing, read_curve

__all__ = ["ARMS", "Arm", "ArmPlan", "Crossing", "CurvePoint", "first_crossing", "parse_arms", "read_curve"]
