"""The online detector: called by the capture collector with every BatchRecord, raises Alerts to sinks.

With a fitted model it alerts from the first batch. Without one it warms up: it keeps the first N batches of the
monitored modes, fits a model on a background thread (the collector thread never waits for the fit), and starts
alerting once the model is in place. It assumes those first N batches are normal, and says so in the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from prism_core.detect.chart import ChartConfig, ControlChart, Recentre, judge
from prism_core.detect.model import LatencyModel
from prism_core.detect.sinks import AlertSink
from prism_core.detect.table import from_records
from prism_core.models import Alert, BatchRecord
from prism_core.models.records import ForwardMode

log = logging.getLogger("prism.detect")

DEFAULT_WARMUP_BATCHES = 1000  # LatencyPrism's model converged after about 1,000 samples
DEFAULT_ESCALATE_BATCHES = 50

EscalateFn = Callable[[Alert, int], None]


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    chart: ChartConfig = field(default_factory=ChartConfig)
    warmup_batches: int = DEFAULT_WARMUP_BATCHES
    escalate_batches: int = DEFAULT_ESCALATE_BATCHES
    # Decode only by default: prefill latency swings with prefix-cache hits the workload does not show.
    modes: frozenset[ForwardMode] = frozenset({"decode"})


@dataclass(frozen=True, slots=True)
class Observation:
    """What the detector computed for the latest monitored batch (for charts, `prism top`, benchmarks)."""

    batch_start_ns: int
    duration_us: float
    predicted_us: float
    error: float
    stat: float
    threshold: float
    alarm: bool


class Detector:
    """`update(record)` per batch on the collector thread; alerts go to every sink, then to escalation hooks."""

    def __init__(
        self,
        model: LatencyModel | None = None,
        sinks: Sequence[AlertSink] = (),
        config: DetectorConfig | None = None,
    ) -> None:
        self.config = config or DetectorConfig()
        self.sinks = list(sinks)
        self.model: LatencyModel | None = None
        self.chart: ControlChart | None = None
        self._recentre = Recentre(0)
        self.last: Observation | None = None
        self.alerts = 0
        self._escalate: list[EscalateFn] = []
        self._alarmed = False
        self._alarm_batches = 0  # monitored batches since this excursion's latest alert
        self._warmup: list[BatchRecord] = []
        self._fitting: threading.Thread | None = None
        self._ready = threading.Event()
        self.fit_error: str | None = None
        if model is not None:
            self._use(model)
        else:
            log.warning(
                "detector: no model loaded; learning from the first %d %s batches (assumed normal) before alerting",
                self.config.warmup_batches,
                "/".join(sorted(self.config.modes)),
            )

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        return self._ready.wait(timeout_s)

    def on_escalate(self, fn: EscalateFn) -> None:
        """Call `fn(alert, batches)` on each alert: the escalation window and diagnosis of the next `batches`."""
        self._escalate.append(fn)

    def update(self, record: BatchRecord) -> Alert | None:
        """Score one batch; return the Alert it raised (already sent to the sinks), else None."""
        if record.mode not in self.config.modes:
            return None
        chart, model = self.chart, self.model
        if chart is None or model is None:
            self._learn(record)
            return None
        y = record.duration_ns / 1e3
        # y_hat: what the chart judged the batch against, the model's own prediction unless re-centred
        y_hat, error, stat, alarm = judge(chart, self._recentre, y, model.predict_record_us(record))
        self.last = Observation(record.start_ns, y, y_hat, error, stat, chart.threshold, alarm)
        if not alarm:
            self._alarmed = False
            return None
        # One alert per excursion; the chart re-arms when the statistic comes back down. An excursion that
        # outlasts its escalation window alerts again: a new fault that starts while the chart is already up
        # (on a noisy host, say) then gets its own alert, window and diagnosis instead of hiding in the old one.
        self._alarm_batches += 1
        if self._alarmed and self._alarm_batches <= self.config.escalate_batches:
            return None
        self._alarmed = True
        self._alarm_batches = 0
        return self._raise(record, y, y_hat, stat, chart.threshold)

    def _raise(self, record: BatchRecord, y: float, y_hat: float, stat: float, threshold: float) -> Alert:
        c = self.config.chart
        alert = Alert(
            ts_ns=time.time_ns(),
            batch_start_ns=record.start_ns,
            model=record.model,
            device=record.device,
            score=stat,
            threshold=threshold,
            message=(
                f"{record.mode} batch of {record.batch_size} took {y / 1e3:.2f} ms, the workload predicts "
                f"{y_hat / 1e3:.2f} ms ({c.mode} chart, W={c.w}{f', {c.run} batches in a row' if c.run > 1 else ''})"
            ),
        )
        self.alerts += 1
        deliver(alert, self.sinks)
        for fn in self._escalate:
            try:
                fn(alert, self.config.escalate_batches)
            except Exception:  # an escalation hook must not stop detection
                log.exception("escalation hook %r failed", fn)
        return alert

    # Warm-up --------------------------------------------------------------------------------------------

    def _learn(self, record: BatchRecord) -> None:
        if self._fitting is not None:
            return
        self._warmup.append(record)
        if len(self._warmup) >= self.config.warmup_batches:
            batches, self._warmup = self._warmup, []
            self._fitting = threading.Thread(target=self._fit, args=(batches,), name="prism-detect-fit", daemon=True)
            self._fitting.start()

    def _fit(self, batches: list[BatchRecord]) -> None:
        try:
            model = LatencyModel.fit(from_records(batches, source="warm-up batches"))
        except Exception as exc:  # reported, not raised: a thread has nobody to raise to
            self.fit_error = f"{type(exc).__name__}: {exc}"
            log.error("detector: warm-up fit failed, no alerts will be raised: %s", self.fit_error)
            return
        self._use(model)
        log.warning("detector: learnt from %d warm-up batches; alerting from now on", len(batches))

    def _use(self, model: LatencyModel) -> None:
        c = self.config.chart
        mu, sigma = model.window_stats(c.w)
        self.model = model
        self.chart = ControlChart(c.w, c.threshold(mu, sigma), c.run, c.lone_ratio)
        self._recentre = Recentre(c.recentre)
        self._ready.set()


def deliver(alert: Alert, sinks: Iterable[AlertSink]) -> None:
    """Send to every sink; one failing sink is logged and the others still get the alert."""
    for sink in sinks:
        try:
            sink.send(alert)
        except Exception:
            log.exception("alert sink %s failed", getattr(sink, "name", sink))
