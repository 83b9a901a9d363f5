"""Sub-networks of a teacher: the spec, activation and extraction, exact counts, search spaces, importance."""

from headstart.subnet.activate import activate
from headstart.subnet.counts import flops_per_token, measure_latency, memory_footprint, param_count, spec_latency
from headstart.subnet.extract import extract, extract_to_folder
from headstart.subnet.spaces import SPACES, Budget, SearchSpace, make_space, parse_budget
from headstart.subnet.spec import LayerSpec, SubnetSpec, full_spec, student_config, validate

__all__ = ["SPACES", "Budget", "LayerSpec", "SearchSpace", "SubnetSpec", "activate", "extract", "extract_to_folder",
           "flops_per_token", "full_spec", "make_space", "measure_latency", "memory_footprint", "param_count",
           "parse_budget", "spec_latency", "student_config", "validate"]
