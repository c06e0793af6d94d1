"""Alert sinks against real endpoints: a webhook server on 127.0.0.1, OTel SDK providers with in-memory readers."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from prism_core.detect import OtelAlertSink, WebhookSink
from prism_core.detect.otel import PRISM_ALERT_EVENT, PRISM_ALERTS
from prism_core.errors import UsageError
from prism_core.models import Alert

ALERT = Alert(ts_ns=2_000, batch_start_ns=1_000, model="m", device="cpu:0", score=0.4, threshold=0.2, message="slow")


class _Server(http.server.ThreadingHTTPServer):
    fail_first = 0
    bodies: list[dict[str, object]]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.fail_first > 0:
            self.server.fail_first -= 1
            self.send_response(503)
        else:
            self.server.bodies.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server(("127.0.0.1", 0), _Handler)
    s.bodies = []
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield s
    s.shutdown()
    s.server_close()


def _url(s: _Server) -> str:
    return f"http://127.0.0.1:{s.server_address[1]}/hook"


def test_webhook_posts_the_alert_json(server: _Server) -> None:
    sink = WebhookSink(_url(server))
    sink.send(ALERT)
    assert sink.flush(10)
    sink.close()
    assert server.bodies == [json.loads(ALERT.model_dump_json())]
    assert sink.stats.sent == 1 and sink.stats.failed == 0


def test_webhook_retries_server_errors(server: _Server) -> None:
    server.fail_first = 2
    sink = WebhookSink(_url(server), retries=3, backoff_s=0.01)
    sink.send(ALERT)
    assert sink.flush(10)
    sink.close()
    assert len(server.bodies) == 1 and sink.stats.attempts == 3


def test_webhook_to_a_dead_endpoint_gives_up_and_counts() -> None:
    s = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    port = s.server_address[1]
    s.server_close()  # nothing listens on this port now
    sink = WebhookSink(f"http://127.0.0.1:{port}/", retries=1, backoff_s=0.01, queue_size=1)
    for _ in range(5):
        sink.send(ALERT)  # returns at once: a full queue drops, it never waits
    assert sink.flush(10)
    sink.close()
    assert sink.stats.sent == 0 and sink.stats.failed >= 1
    assert sink.stats.failed + sink.stats.dropped == 5


def test_webhook_rejects_a_non_http_url() -> None:
    with pytest.raises(UsageError, match="http"):
        WebhookSink("ftp://example.invalid/x")


def test_otel_sink_emits_span_event_and_counter() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    sink = OtelAlertSink(tp, MeterProvider(metric_readers=[reader]))
    sink.send(ALERT)
    sink.send(ALERT)
    (first, _second) = spans.get_finished_spans()
    assert first.name == PRISM_ALERT_EVENT and first.start_time == 1_000 and first.end_time == 2_000
    (event,) = first.events
    assert event.name == PRISM_ALERT_EVENT and event.attributes is not None
    assert event.attributes["prism.alert.score"] == 0.4
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == PRISM_ALERTS
        for p in m.data.data_points
    ]
    assert [p.value for p in points] == [2]  # type: ignore[attr-defined]
