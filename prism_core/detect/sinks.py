"""Alert sinks: where alerts go. Built-in: log, Python callback, webhook (webhook.py), OpenTelemetry (otel.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
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


class FunctionSink:
    """Calls a Python function with each alert, on the collector thread (keep it quick)."""

    def __init__(self, fn: Callable[[Alert], None], name: str = "callback") -> None:
        self.name = name
        self._fn = fn

    def send(self, alert: Alert) -> None:
        self._fn(alert)

    def close(self) -> None:
        return None
