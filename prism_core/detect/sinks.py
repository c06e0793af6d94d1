"""Alert sinks: where alerts go. Built-in: log."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from prism_core.models import Alert

log = logging.getLogger("prism.alerts")


@runtime_checkable
class AlertSink(Protocol):
    """Receives alerts on the collector thread. Must return quickly: queue slow work (HTTP) itself."""

    name: str

    def send(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


class LogSink:
    """Writes each alert as one WARNING line on the `prism.alerts` logger."""

    name = "log"

    def send(self, alert: Alert) -> None:
        log.warning(
            "%s on %s: score %.3f > %.3f: %s", alert.model, alert.device, alert.score, alert.threshold, alert.message
        )

    def close(self) -> None:
        return None
