"""`prism bench detect`: per-batch scoring cost and the detector's alert latency, measured here and now.

Alert latency is from the moment a finished BatchRecord is handed to `Detector.update` (what the collector does
once it has assembled the batch) to the moment the last sink's `send` has the alert; the collector's own
pick-up delay is measured by `prism bench capture`. Sinks: a Python callback, the OpenTelemetry sink on SDK
providers with in-memory readers, and a webhook posting to a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

from prism_core.detect.chart import ChartConfig
from prism_core.detect.detector import Detector, DetectorConfig
from prism_core.detect.model import LatencyModel
from prism_core.detect.otel import OtelAlertSink
from prism_core.detect.sinks import AlertSink, FunctionSink
from prism_core.detect.table import WorkloadTable, from_records
from prism_core.detect.webhook import WebhookSink
from prism_core.models import Alert, BatchRecord

SCORE_ROUNDS = 20_000
ALERT_ROUNDS = 2_000


def decode_record(batch: int, kv: float, duration_us: float, start_ns: int = 0) -> BatchRecord:
    return BatchRecord(
        start_ns=start_ns,
        duration_ns=int(duration_us * 1e3),
        mode="decode",
        batch_size=batch,
        decode_tokens=batch,
        avg_input_len=kv * 0.6,
        max_input_len=int(kv * 0.6),
        avg_output_len=kv * 0.4,
        max_output_len=int(kv * 0.4),
        kv_tokens=int(batch * kv),
        model="bench",
        engine="bench",
        device="cpu:0",
        pid=os.getpid(),
    )


def synthetic_decode_table(n: int, seed: int = 0) -> WorkloadTable:
    """A decode workload whose latency follows the memory-bandwidth law (fixed + per-sequence + B x KV terms)."""
    rng = np.random.default_rng(seed)
    batch = rng.integers(1, 257, n)
    kv = rng.uniform(64, 4096, n)
    us = (20_000 + 40 * batch + 0.02 * batch * kv) * rng.lognormal(0, 0.02, n)
    recs = [
        decode_record(int(b), float(k), float(d), i * 1000)
        for i, (b, k, d) in enumerate(zip(batch, kv, us, strict=True))
    ]
    return from_records(recs, groups=[f"job{i * 20 // n}" for i in range(n)], source="synthetic decode workload")


# The webhook endpoint runs in its own process, as a real one would: in-process it would compete for the GIL.
_SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def detect(rows: int = 40_000) -> dict[str, Any]:
    table = synthetic_decode_table(rows)
    t0 = time.perf_counter()
    model = LatencyModel.fit(table)
    fit_s = time.perf_counter() - t0

    rng = np.random.default_rng(1)
    recs = [
        decode_record(int(b), float(k), 30_000.0)
        for b, k in zip(rng.integers(1, 257, 512), rng.uniform(64, 4096, 512), strict=True)
    ]
    score_ns = np.empty(SCORE_ROUNDS)
    for i in range(SCORE_ROUNDS):
        r = recs[i % len(recs)]
        a = time.perf_counter_ns()
        model.predict_record_us(r)
        score_ns[i] = time.perf_counter_ns() - a

    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        return _alerts(model, fit_s, rows, score_ns, int((server.stdout or sys.stdin).readline()))
    finally:
        server.terminate()
        server.wait()


def _alerts(model: LatencyModel, fit_s: float, rows: int, score_ns: np.ndarray[Any, Any], port: int) -> dict[str, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    rng = np.random.default_rng(2)
    received: list[int] = []
    webhook = WebhookSink(f"http://127.0.0.1:{port}/alerts", queue_size=ALERT_ROUNDS)
    reader = InMemoryMetricReader()
    sinks: list[AlertSink] = [
        OtelAlertSink(TracerProvider(), MeterProvider(metric_readers=[reader])),
        webhook,
        FunctionSink(lambda _a: received.append(time.perf_counter_ns())),  # last: sees the alert after the others
    ]
    config = DetectorConfig(chart=ChartConfig(mode="point"))
    detector = Detector(model, sinks, config)
    latency_ns: list[int] = []
    update_ns: list[int] = []
    for i in range(ALERT_ROUNDS):
        # Alternate normal and 3x-slow batches so every slow one is a fresh excursion and raises an alert.
        b, k = int(rng.integers(1, 257)), float(rng.uniform(64, 4096))
        normal = model.predict_record_us(decode_record(b, k, 1.0))
        for slow in (False, True):
            rec = decode_record(b, k, normal * (3.0 if slow else 1.0), i)
            a = time.perf_counter_ns()
            alert: Alert | None = detector.update(rec)
            update_ns.append(time.perf_counter_ns() - a)
            if slow and alert is not None:
                latency_ns.append(received[-1] - a)
    delivered = webhook.flush(30.0)
    webhook.close()
    lat = np.array(latency_ns) / 1e6
    return {
        "rows": rows,
        "fit_s": round(fit_s, 3),
        "trees": len(model.trees.roots),
        "tree_depth": model.trees.depth,
        "score_us_p50": round(float(np.median(score_ns)) / 1e3, 2),
        "score_us_p99": round(float(np.percentile(score_ns, 99)) / 1e3, 2),
        "update_us_p50": round(float(np.median(update_ns)) / 1e3, 2),
        "alerts": len(latency_ns),
        "alert_latency_ms_p50": round(float(np.median(lat)), 4),
        "alert_latency_ms_p99": round(float(np.percentile(lat, 99)), 4),
        "alert_latency_scope": "Detector.update(record) to the last sink's send (callback, OTel, webhook enqueue)",
        "webhook_delivered": webhook.stats.sent,
        "webhook_drained": delivered,
    }
