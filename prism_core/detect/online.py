"""Online detection inside a capture session: detector, escalation window export, and diagnosis on each alert.

`OnlineDetection.attach(collector, ...)` registers one consumer on the collector thread. Per BatchRecord it:

1. scores the batch (`Detector.update`); an alert goes to every sink, and to the collector's exporters (alerts are
   Records: the jsonl and OTLP exporters carry them);
2. on an alert, escalates: the next `escalate_batches` batches, preceded by the last chart window that raised it,
   are written to their own Chrome trace (`alert-N.trace.json`, renamed into place when the window is complete);
3. diagnoses: the batches before the alert against the escalated ones (`WindowDiagnoser`), and sends the alert
   again with the top suspects filled in, so a sink sees first the alert (fast) and then its diagnosis;
4. once diagnosed, deep-captures (`OperatorCapture`, when given): operator timing of the next `deep.batches`
   batches into `alert-N-....ops.trace.json`. It comes after the diagnosis window because the profiler slows the
   batches it covers: those batches are not scored either.

Everything runs on the collector thread except telemetry sampling (its own thread, see `TelemetryFeed`).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from prism_core.capture.collector import Collector
from prism_core.capture.deep import OperatorCapture
from prism_core.capture.telemetry import TelemetryFeed, TelemetrySampler
from prism_core.detect.detector import Detector, DetectorConfig, Observation, deliver
from prism_core.detect.model import LatencyModel
from prism_core.detect.sinks import AlertSink
from prism_core.diagnose.rank import Diagnosis, Suspect
from prism_core.diagnose.window import WindowDiagnoser
from prism_core.export import Exporter, ExportSpec
from prism_core.models import Alert, BatchRecord, Record

log = logging.getLogger("prism.detect")

TOP_SUSPECTS = 3


def suspect_line(s: Suspect) -> str:
    """One suspect as the Alert carries it: `stage x resource (share a -> b, p=...)`."""
    return (
        f"{s.where} x {s.resource} (share {s.share_normal:.2f}->{s.share_abnormal:.2f}, "
        f"{s.stage_ms_normal:.2f}->{s.stage_ms_abnormal:.2f} ms, p={s.p_stage_time:.2g})"
    )


class ExporterAlertSink:
    """Hands each alert to the collector's exporters, so an alert lands in the same files and backends."""

    name = "export"

    def __init__(self, exporters: Callable[[], Sequence[Exporter]]) -> None:
        self._exporters = exporters

    def send(self, alert: Alert) -> None:
        for exporter in self._exporters():
            try:
                exporter.export([alert])
            except Exception as exc:  # one exporter failing must not keep the alert from the others
                log.warning("alert export to %s failed: %s", exporter.spec, exc)

    def close(self) -> None:
        return None


class WindowTrace:
    """The Chrome trace of one escalation window, written to `PATH.part` and renamed to PATH when complete."""

    def __init__(self, path: Path, make: Callable[[ExportSpec], Exporter], batches: int) -> None:
        self.path = path
        self.left = batches
        self._part = path.with_name(path.name + ".part")
        self._exporter = make(ExportSpec("chrome", str(self._part)))

    def add(self, records: Sequence[Record]) -> None:
        self._exporter.export(records)

    def step(self, record: BatchRecord) -> bool:
        """Add one escalated batch; True once the window is complete (and the file in place)."""
        self._exporter.export([record])
        self.left -= 1
        if self.left > 0:
            return False
        self.close()
        return True

    def close(self) -> None:
        self._exporter.close()
        if self._part.exists():
            os.replace(self._part, self.path)


class OnlineDetection:
    """The detector wired into a collector, with escalation windows and diagnosis. `close()` ends it."""

    def __init__(
        self,
        collector: Collector,
        *,
        model: LatencyModel | None = None,
        sinks: Sequence[AlertSink] = (),
        config: DetectorConfig | None = None,
        window_dir: Path | None = None,
        make_exporter: Callable[[ExportSpec], Exporter] | None = None,
        diagnose_before: int = 200,
        sampler: TelemetrySampler | None = None,
        keep_history: bool = False,
        deep: OperatorCapture | None = None,
    ) -> None:
        self.collector = collector
        self.sinks = [*sinks, ExporterAlertSink(lambda: list(collector.exporters))]
        self.detector = Detector(model, self.sinks, config)
        after = self.detector.config.escalate_batches
        self.diagnoser = WindowDiagnoser(before=diagnose_before, after=after)
        self.detector.on_escalate(self._on_escalate)
        self.window_dir = window_dir
        self._make = make_exporter
        w = self.detector.config.chart.w
        self._recent: deque[BatchRecord] = deque(maxlen=w)
        self._window: WindowTrace | None = None
        self._pending: Alert | None = None
        self.windows: list[Path] = []
        self.diagnosed: list[tuple[Alert, Diagnosis]] = []
        # Every scored batch's Observation, for a control-chart plot (`prism demo`); off by default: it grows.
        self.history: list[Observation] | None = [] if keep_history else None
        self._telemetry = TelemetryFeed(sampler, self.diagnoser.observe_telemetry) if sampler is not None else None
        self.deep = deep
        collector.add_consumer(self.on_batch)

    def on_batch(self, record: BatchRecord) -> None:
        self._recent.append(record)
        before = self._window
        seen = self.detector.last
        if self.deep is not None and self.deep.busy:
            return  # under the profiler: its latency says more about the profiler than about the engine
        self.detector.update(record)
        if self.history is not None and self.detector.last is not seen and self.detector.last is not None:
            self.history.append(self.detector.last)
        # A window opened by this very batch already holds it (it ends the chart window that raised the alert).
        if self._window is not None and self._window is before and self._window.step(record):
            self.windows.append(self._window.path)
            self._window = None
        diagnosis = self.diagnoser.observe(record)
        if diagnosis is not None and self._pending is not None:
            self._diagnosed(self._pending, diagnosis)

    def _on_escalate(self, alert: Alert, batches: int) -> None:
        self.diagnoser.on_alert(alert, batches)
        if self._pending is None:
            self._pending = alert
        if self._window is not None or self.window_dir is None or self._make is None or batches < 1:
            return
        try:
            self.window_dir.mkdir(parents=True, exist_ok=True)
            path = self.window_dir / f"alert-{self.detector.alerts}-{alert.batch_start_ns}.trace.json"
            self._window = WindowTrace(path, self._make, batches)
            self._window.add(list(self._recent))  # the chart window that raised the alert
        except Exception as exc:  # no window file, but detection goes on
            log.warning("alert window not exported: %s", exc)
            self._window = None

    def _diagnosed(self, alert: Alert, diagnosis: Diagnosis) -> None:
        self._pending = None
        top = diagnosis.suspects[:TOP_SUSPECTS]
        lines = [suspect_line(s) for s in top]
        where = f"{top[0].where} x {top[0].resource}" if top else "no stage stands out"
        follow = alert.model_copy(update={"suspects": lines, "message": f"{alert.message}; diagnosis: {where}"})
        self.diagnosed.append((follow, diagnosis))
        deliver(follow, self.sinks)
        if self.deep is not None and self.window_dir is not None:
            path = self.window_dir / f"alert-{self.detector.alerts}-{alert.batch_start_ns}.ops.trace.json"
            if self.deep.arm(path):
                log.warning("deep capture: operator timing of the next %d batches into %s", self.deep.batches, path)

    def close(self) -> None:
        """Close an open window file (a short window is still a whole file) and the telemetry feed."""
        if self._window is not None:
            self._window.close()
            self.windows.append(self._window.path)
            self._window = None
        if self._telemetry is not None:
            self._telemetry.close()
            self._telemetry.sampler.close()
            self._telemetry = None
        if self.deep is not None:
            self.deep.close()
