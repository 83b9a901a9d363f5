"""Search a teacher for the best sub-network under a parameter budget (the paper's bin-constrained evolution)."""

from headstart.search.journal import Journal, spec_key
from headstart.search.objective import PerplexityObjective, ProxyObjective
from headstart.search.pareto import non_dominated
from headstart.search.run import SearchConfig, run_search

__all__ = ["Journal", "PerplexityObjective", "ProxyObjective", "SearchConfig", "non_dominated", "run_search",
           "spec_key"]
