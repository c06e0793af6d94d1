"""Resource telemetry: the interface accelerator plugins implement, and a thread that samples it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from prism_core.models import Device, TelemetrySample

log = logging.getLogger("prism.telemetry")


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


class TelemetryFeed:
    """Samples one device every `interval_s` on a background thread and hands each sample to `on_sample`.
    `close()` stops the thread; the sampler stays its owner's to close. A sampler that fails stops the feed with a
    warning, never the work it is evidence for."""

    def __init__(
        self, sampler: TelemetrySampler, on_sample: Callable[[TelemetrySample], None], interval_s: float = 0.25
    ) -> None:
        self.sampler = sampler
        self._on_sample = on_sample
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prism-telemetry", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._on_sample(self.sampler.sample())
            except Exception as exc:
                log.warning("telemetry sampling stopped: %s", exc)
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
