"""In-memory implementations of Prism's own interfaces, for tests of later capabilities."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from prism_core.capture.workload import LazyRequests, LazyWorkload, RequestTiming, Workload
from prism_core.export import ExportSpec
from prism_core.models import Alert, Device, Record


class RecordingRecorder:
    """A StageRecorder that keeps every stage call as ('begin'|'end', stage), thread-safe.

    Iteration boundaries go to `iterations` ('begin', None) / ('end', Workload) and finished requests to
    `requests`, so `calls` holds stage events only.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.iterations: list[tuple[str, Workload | None]] = []
        self.requests: list[RequestTiming] = []
        self._lock = threading.Lock()

    def begin(self, stage: str) -> None:
        with self._lock:
            self.calls.append(("begin", stage))

    def end(self, stage: str) -> None:
        with self._lock:
            self.calls.append(("end", stage))

    def iteration_begin(self) -> None:
        with self._lock:
            self.iterations.append(("begin", None))

    def iteration_end(self, workload: LazyWorkload) -> None:
        resolved = workload if isinstance(workload, Workload) else workload()
        with self._lock:
            self.iterations.append(("end", resolved))

    def requests_done(self, requests: LazyRequests) -> None:
        resolved = list(requests() if callable(requests) else requests)
        with self._lock:
            self.requests.extend(resolved)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.iterations.clear()
            self.requests.clear()


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


class DelayedTiming:
    """A TimingBackend whose marks resolve only once `ready` is set, as a GPU's events do when the device lags."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.ready = threading.Event()
        self.released: list[int] = []
        self._next = 0

    def mark(self) -> int:
        self._next += 1
        return self._next * 1_000

    def elapsed_ns(self, start: int, end: int) -> int | None:
        return end - start if self.ready.is_set() else None

    def release(self, mark: int) -> None:
        self.released.append(mark)

    def close(self) -> None:
        return None
