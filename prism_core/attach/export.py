"""Where `prism attach` sends what it sees from outside a process: OTLP metrics, or JSON lines.

Records (batches, requests) need Prism inside the process; from outside there are only interval figures, so they
go out as gauges, one point per report: each engine thread's stage shares and busy share (py-spy), and the
engine's mean request latencies and finished requests over the interval (its metrics endpoint). This runs in the
`prism attach` process, not the server's, so the OpenTelemetry SDK's own instruments are used as they are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prism_core.errors import UsageError
from prism_core.export import names as n
from prism_core.export.base import ExportSpec

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider

LATENCIES = ("ttft", "tpot", "e2e", "queue")  # the `<name>_s_mean` fields of an interval summary
SCHEMES = ("otlp", "otlp+grpc", "otlp+http", "jsonl")


class ReportExport:
    """Publishes each report to every spec given; `close()` flushes."""

    def __init__(self, specs: list[str]) -> None:
        parsed = [ExportSpec.parse(s) for s in specs]
        for spec in parsed:
            if spec.scheme not in SCHEMES:
                raise UsageError(f"from outside, prism attach exports to {', '.join(SCHEMES)} only, not {spec.scheme}")
            if spec.scheme == "jsonl" and (not spec.target or not Path(spec.target).parent.is_dir()):
                raise UsageError(f"{spec}: give a file in a folder that exists (jsonl:PATH)")
        self._files = [Path(s.target) for s in parsed if s.scheme == "jsonl"]
        self._provider: MeterProvider | None = None
        otlp = [s for s in parsed if s.scheme.startswith("otlp")]
        if otlp:
            self._provider = self._meter_provider(otlp)
            meter = self._provider.get_meter("prism.attach")
            self._share = meter.create_gauge(n.PRISM_ATTACH_STAGE_SHARE, unit="1")
            self._busy = meter.create_gauge(n.PRISM_ATTACH_BUSY, unit="1")
            self._latency = meter.create_gauge(n.PRISM_ATTACH_LATENCY_MEAN, unit="s")
            self._requests = meter.create_gauge(n.PRISM_ATTACH_REQUESTS, unit="{request}")

    @staticmethod
    def _meter_provider(specs: list[ExportSpec]) -> MeterProvider:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource

        from prism_core.export.otel import metric_exporter

        # Pushed by `publish` (force_flush) once per report; the reader's own timer is set far beyond any run.
        readers = [PeriodicExportingMetricReader(metric_exporter(s), export_interval_millis=1e9) for s in specs]
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "prism-attach")})
        return MeterProvider(metric_readers=readers, resource=resource)

    def publish(self, report: dict[str, Any]) -> None:
        for path in self._files:  # opened per report (seconds apart): the file is whole lines between reports
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(report) + "\n")
        if self._provider is None:
            return
        for t in report["stages"]:
            where = {n.PRISM_PID: t["pid"], "thread.id": t["tid"], "thread.name": t["thread"]}
            self._busy.set(t["busy"], where)
            for stage, share in t["shares"].items():
                self._share.set(share, {**where, n.PRISM_STAGE: stage})
        interval = report.get("interval")
        if interval:
            engine = {n.PRISM_ENGINE: report["engine"], n.PRISM_PID: report["pid"]}
            self._requests.set(interval["requests"], engine)
            for name in LATENCIES:
                value = interval.get(f"{name}_s_mean")
                if value is not None:
                    self._latency.set(value, {**engine, n.PRISM_LATENCY: name})
        self._provider.force_flush()

    def close(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()
