"""Device-side stage timing: the interface accelerator plugins implement."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from prism_core.models import Device


@runtime_checkable
class TimingBackend(Protocol):
    """Times stages on the device the engine runs on, without ever synchronising the engine.

    The engine thread calls `mark()` at a stage's begin and end (hot path: no allocation, no blocking; GPU
    backends record a pooled event on the current stream). The collector thread later calls
    `elapsed_ns(start, end)`, which returns None while the device has not reached `end` yet, and then
    `release()` both marks so pooled events are reused.
    """

    device: Device
    # Optional `immediate = True`: `elapsed_ns(a, b)` is `max(0, b - a)` at once and `release` does nothing (a
    # clock, not device events), so the collector sums device time as stages end instead of resolving later.

    def mark(self) -> int:
        """Record a point on the engine's current stream; returns an opaque handle."""
        ...

    def elapsed_ns(self, start: int, end: int) -> int | None:
        """Device time between two marks, or None if not resolved yet. Never blocks."""
        ...

    def release(self, mark: int) -> None:
        """Give a mark back to the pool once its time has been read."""
        ...

    def close(self) -> None:
        """Free every device resource the backend holds. Idempotent."""
        ...
