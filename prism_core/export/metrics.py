"""Metrics aggregated locally, handed to the OpenTelemetry SDK's OTLP metric exporter already aggregated.

A histogram `record()` through the SDK walks views, attribute filters, exemplar reservoirs and locks: several
microseconds each, five to eight times per batch, on the collector thread that shares the GIL with the engine.
Here a record is one dict lookup, one bisect and three additions; every `interval_s` a timer thread (not the
record path) turns the cumulative counts into the SDK's `MetricsData` and calls the SDK exporter, which owns the
transport (gRPC or HTTP, OTEL_EXPORTER_OTLP_* variables, retries, timeouts).
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricsData
    from opentelemetry.sdk.resources import Resource

log = logging.getLogger("prism.export")

Attributes = tuple[tuple[str, Any], ...]


@dataclass(slots=True)
class _Series:
    """One cumulative explicit-bucket histogram point: counts[i] holds values <= bounds[i] (and > bounds[i-1])."""

    counts: list[int]
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")


@dataclass(slots=True)
class _Histogram:
    unit: str
    bounds: tuple[float, ...]
    series: dict[Attributes, _Series] = field(default_factory=dict)


class LocalMetrics:
    """Cumulative histograms and observed counters; `record` on one thread, `metrics_data` on another."""

    def __init__(self, scope_name: str, scope_version: str) -> None:
        self.scope_name = scope_name
        self.scope_version = scope_version
        self.start_ns = time.time_ns()
        self._histograms: dict[str, _Histogram] = {}
        self._counters: list[tuple[str, str, Callable[[], float | None]]] = []
        self._lock = threading.Lock()  # guards series creation and the snapshot; uncontended on the record path

    def histogram(self, name: str, unit: str, bounds: Sequence[float]) -> None:
        self._histograms[name] = _Histogram(unit, tuple(bounds))

    def counter(self, name: str, unit: str, read: Callable[[], float | None]) -> None:
        """A monotonic sum read at each export (on the exporting thread); None leaves it out of that export."""
        self._counters.append((name, unit, read))

    def record(self, name: str, value: float, attributes: Attributes) -> None:
        h = self._histograms[name]
        with self._lock:
            s = h.series.get(attributes)
            if s is None:
                s = h.series[attributes] = _Series([0] * (len(h.bounds) + 1))
            s.counts[bisect_left(h.bounds, value)] += 1
            s.count += 1
            s.total += value
            if value < s.low:
                s.low = value
            if value > s.high:
                s.high = value

    def metrics_data(self, resource: Resource) -> MetricsData | None:
        """Everything so far as the SDK's cumulative MetricsData; None when there is nothing to report."""
        from opentelemetry.sdk.metrics.export import (
            AggregationTemporality,
            Histogram,
            HistogramDataPoint,
            Metric,
            MetricsData,
            NumberDataPoint,
            ResourceMetrics,
            ScopeMetrics,
            Sum,
        )
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        now = time.time_ns()
        cumulative = AggregationTemporality.CUMULATIVE
        metrics = []
        with self._lock:
            for name, h in self._histograms.items():
                points = [
                    HistogramDataPoint(
                        attributes=dict(attrs),
                        start_time_unix_nano=self.start_ns,
                        time_unix_nano=now,
                        count=s.count,
                        sum=s.total,
                        bucket_counts=list(s.counts),
                        explicit_bounds=list(h.bounds),
                        min=s.low,
                        max=s.high,
                    )
                    for attrs, s in h.series.items()
                ]
                if points:
                    metrics.append(Metric(name, None, h.unit, Histogram(points, cumulative)))
        for name, unit, read in self._counters:
            value = read()
            if value is not None:
                point = NumberDataPoint(
                    attributes={}, start_time_unix_nano=self.start_ns, time_unix_nano=now, value=value
                )
                metrics.append(Metric(name, None, unit, Sum([point], cumulative, is_monotonic=True)))
        if not metrics:
            return None
        scope = ScopeMetrics(InstrumentationScope(self.scope_name, self.scope_version), metrics, "")
        return MetricsData([ResourceMetrics(resource, [scope], "")])


class MetricPusher:
    """Exports a LocalMetrics every `interval_s` from a daemon thread that sleeps on a timer in between."""

    def __init__(
        self,
        metrics: LocalMetrics,
        exporter: MetricExporter,
        resource: Resource,
        *,
        interval_s: float,
        timeout_s: float,
    ) -> None:
        self.metrics = metrics
        self.exporter = exporter
        self.resource = resource
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.failed = 0
        self._export_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prism-otlp-metrics", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.push()

    def push(self) -> None:
        """Export now (any thread)."""
        with self._export_lock:
            try:
                data = self.metrics.metrics_data(self.resource)
                if data is not None:
                    self.exporter.export(data, timeout_millis=self.timeout_s * 1000)
            except Exception as exc:  # an unreachable backend costs its points, never the program
                self.failed += 1
                if self.failed == 1:
                    log.info("OTLP metric export failed: %s", exc)

    def close(self) -> None:
        """Last export, then stop the thread and the exporter. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(self.timeout_s)
        self.push()
        try:
            self.exporter.shutdown(timeout_millis=self.timeout_s * 1000)
        except Exception as exc:
            log.info("OTLP metric exporter shutdown failed: %s", exc)
