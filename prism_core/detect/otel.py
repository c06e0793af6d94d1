"""OpenTelemetry alert sink: a `prism.alert` span with the alert as a span event, and a `prism.alerts` counter.

The tracer and meter providers are passed in (the capture session's own, or a test's in-memory ones); this sink
never touches the global providers, so two sessions in one process cannot mix their alerts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prism_core.export import names
from prism_core.models import Alert

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

# The lead may move these into prism_core.export.names with the other prism.* names.
PRISM_ALERTS = "prism.alerts"  # counter: alerts raised, by model and device
PRISM_ALERT_EVENT = "prism.alert"  # span name and span event name
PRISM_ALERT_SCORE = "prism.alert.score"
PRISM_ALERT_THRESHOLD = "prism.alert.threshold"
PRISM_ALERT_MESSAGE = "prism.alert.message"
PRISM_ALERT_BATCH_START_NS = "prism.alert.batch_start_ns"
MODEL = names.GEN_AI_REQUEST_MODEL
DEVICE = names.PRISM_DEVICE


class OtelAlertSink:
    """Each alert: one span (from the batch's start to the alert) carrying a span event, and counter + 1."""

    name = "otel"

    def __init__(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
        from prism_core import __version__

        self._tracer = tracer_provider.get_tracer("prism.detect", __version__)
        meter = meter_provider.get_meter("prism.detect", __version__)
        self._counter = meter.create_counter(PRISM_ALERTS, unit="{alert}", description="latency alerts raised")

    def send(self, alert: Alert) -> None:
        where = {MODEL: alert.model, DEVICE: alert.device}
        attrs: dict[str, str | int | float] = {
            **where,
            PRISM_ALERT_SCORE: alert.score,
            PRISM_ALERT_THRESHOLD: alert.threshold,
            PRISM_ALERT_MESSAGE: alert.message,
            PRISM_ALERT_BATCH_START_NS: alert.batch_start_ns,
        }
        start = min(alert.batch_start_ns, alert.ts_ns)
        span = self._tracer.start_span(PRISM_ALERT_EVENT, start_time=start, attributes=where)
        span.add_event(PRISM_ALERT_EVENT, attributes=attrs, timestamp=alert.ts_ns)
        span.end(end_time=alert.ts_ns)
        self._counter.add(1, where)

    def close(self) -> None:
        return None
