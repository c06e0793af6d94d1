"""Resource telemetry: the interface accelerator plugins implement."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from prism_core.models import Device, TelemetrySample


@runtime_checkable
class TelemetrySampler(Protocol):
    """Reads one device's resource state. Called from a background thread, never from the engine's."""

    device: Device

    def fields(self) -> tuple[str, ...]:
        """Every metric name this sampler tries to read (names from prism_core.export.names)."""
        ...

    def sample(self) -> TelemetrySample:
        """Read every field now; fields that fail go to `unreadable` with the reason, never as zero."""
        ...

    def close(self) -> None:
        """Release vendor handles. Idempotent."""
        ...
