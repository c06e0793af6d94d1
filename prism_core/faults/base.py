"""Fault injectors: the interface of the anomaly simulation toolkit."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from prism_core.errors import UsageError


def check_intensity(intensity: float, name: str = "") -> None:
    """Intensity is in (0, 1]: a UsageError (a ValueError) naming the fault otherwise."""
    if not 0 < intensity <= 1:
        raise UsageError(f"{name + ': ' if name else ''}intensity must be in (0, 1], got {intensity}")


@runtime_checkable
class FaultInjector(Protocol):
    """One reproducible fault. `start` and `stop` return the wall-clock ns they took effect (ground truth).

    `stop` must restore the system whatever happened in between, and be safe to call twice.
    """

    name: str
    resource: str
    description: str

    def start(self, intensity: float) -> int:
        """Begin the fault at `intensity` in (0, 1]; returns time.time_ns() of onset, read before any of the fault's
        own set-up (threads, processes, allocations), which can already disturb the engine: the labelled interval
        must cover everything the fault did."""
        ...

    def stop(self) -> int:
        """End the fault and restore; returns time.time_ns() of the end. Idempotent."""
        ...

    @property
    def active(self) -> bool:
        """True between a successful start and stop."""
        ...
