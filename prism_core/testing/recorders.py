"""In-memory implementations of Prism's own interfaces, for tests of later capabilities."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from prism_core.export import ExportSpec
from prism_core.models import Alert, Record


class RecordingRecorder:
    """A StageRecorder that keeps every call as ('begin'|'end', stage), thread-safe."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def begin(self, stage: str) -> None:
        with self._lock:
            self.calls.append(("begin", stage))

    def end(self, stage: str) -> None:
        with self._lock:
            self.calls.append(("end", stage))

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()


class InMemoryExporter:
    """An Exporter that keeps what it was given (as OpenTelemetry's InMemorySpanExporter does)."""

    def __init__(self, spec: ExportSpec | None = None) -> None:
        self.spec = spec or ExportSpec("memory", "")
        self.records: list[Record] = []
        self.closed = False

    def export(self, records: Sequence[Record]) -> None:
        self.records.extend(records)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


class CallbackSink:
    """An AlertSink that keeps alerts in a list."""

    name = "memory"

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def close(self) -> None:
        return None
