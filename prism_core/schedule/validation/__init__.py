"""Validation of the simulator's cost model against a real CPU engine (the tiny random-weight Llama)."""

from prism_core.schedule.validation.cpu_spec import measure_cpu
from prism_core.schedule.validation.validate import validate_cpu

__all__ = ["measure_cpu", "validate_cpu"]
