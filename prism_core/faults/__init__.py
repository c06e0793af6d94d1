"""Anomaly simulation toolkit: fault injectors contributed by plugins."""

from prism_core.faults.base import FaultInjector

__all__ = ["FaultInjector"]
