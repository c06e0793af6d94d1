"""OpenTelemetry export: a span per batch with a child span per stage, a GenAI span per request, and histograms.

Nothing here touches the global tracer or meter provider, so a program that configures OpenTelemetry itself keeps
its own. Everything here runs on the collector thread, which shares the GIL with the engine, so per batch it only
encodes bytes and bumps counters: spans are encoded straight to OTLP protobuf (wire.py) and shipped by Prism's
sender thread, histograms are aggregated locally and handed to the SDK's OTLP metric exporter every
`METRIC_INTERVAL_S` by a timer thread (metrics.py). Stage child spans are laid end to end from the batch's start
in the order the stages first began (adapters report sequential stages, so this is where they ran).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prism_core.errors import UsageError
from prism_core.export import names as n
from prism_core.export import wire
from prism_core.export.base import Exporter, ExportSpec
from prism_core.export.metrics import LocalMetrics, MetricPusher
from prism_core.export.otlp_traces import SpanSender
from prism_core.models import Alert, BatchRecord, Record, RequestRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter

    from prism_core.capture.collector import CaptureStats

EXPORT_TIMEOUT_S = 2.0  # bounds how long an unreachable endpoint can hold up the program's exit
METRIC_INTERVAL_S = 5.0
SPANS_PER_REQUEST = 512  # spans gathered before one export request is sent ...
SEND_INTERVAL_S = 1.0  # ... or after this long, whichever comes first
PROTOCOLS = ("grpc", "http/protobuf")
SCOPE = "prism"


class OtelExporter:
    """Records -> OTLP spans (encoded here, shipped by a SpanSender) and locally aggregated metrics."""

    def __init__(
        self, spec: ExportSpec, spans: SpanSender, metric_exporter: MetricExporter, *, sample_ratio: float = 1.0
    ) -> None:
        from opentelemetry.sdk.resources import Resource

        from prism_core import __version__

        self.spec = spec
        self._spans = spans
        self.sample_ratio = sample_ratio
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "prism")})
        self._resource_attributes = dict(resource.attributes)
        self._version = __version__
        self._metrics = LocalMetrics(SCOPE, __version__)
        self._metrics.histogram(n.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, "s", n.TTFT_BUCKETS_S)
        self._metrics.histogram(n.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN, "s", n.TPOT_BUCKETS_S)
        self._metrics.histogram(n.GEN_AI_SERVER_REQUEST_DURATION, "s", n.REQUEST_DURATION_BUCKETS_S)
        self._metrics.histogram(n.PRISM_BATCH_DURATION, "s", n.BATCH_BUCKETS_S)
        self._metrics.histogram(n.PRISM_STAGE_DURATION, "s", n.BATCH_BUCKETS_S)
        self._stats: Callable[[], CaptureStats] | None = None
        counters: list[tuple[str, str, Callable[[CaptureStats], float]]] = [
            (n.PRISM_CAPTURE_DROPPED, "{event}", lambda s: s.events_dropped),
            (n.PRISM_CAPTURE_BATCHES, "{batch}", lambda s: s.batches),
            (n.PRISM_CAPTURE_COLLECTOR_CPU, "s", lambda s: s.collector_cpu_ns / 1e9),
        ]
        for name, unit, field in counters:
            self._metrics.counter(name, unit, self._reader(field))
        self._pusher = MetricPusher(
            self._metrics, metric_exporter, resource, interval_s=METRIC_INTERVAL_S, timeout_s=EXPORT_TIMEOUT_S
        )
        self._engines: dict[str, str] = {}
        self._pending: list[bytes] = []
        self._since = time.monotonic()
        self._closed = False

    def _reader(self, field: Callable[[CaptureStats], float]) -> Callable[[], float | None]:
        """Reads one collector counter at export time; None (left out) until a collector attached its stats."""
        return lambda: field(self._stats()) if self._stats is not None else None

    def attach_stats(self, stats: Callable[[], CaptureStats]) -> None:
        """Called by the collector: publish its counters (drops included) as metrics."""
        self._stats = stats

    def export(self, records: Sequence[Record]) -> None:
        if self._closed:
            raise RuntimeError(f"{self.spec} is closed")
        if not self._pending:
            self._since = time.monotonic()
        for record in records:
            if isinstance(record, BatchRecord):
                self._batch(record, self._sampled())
            elif isinstance(record, RequestRecord):
                self._request(record, self._sampled())
            elif isinstance(record, Alert):
                self._alert(record)
        if len(self._pending) >= SPANS_PER_REQUEST or time.monotonic() - self._since >= SEND_INTERVAL_S:
            self._submit()

    def _submit(self) -> None:
        """Ship the spans gathered so far as one ExportTraceServiceRequest."""
        spans, self._pending = self._pending, []
        if spans:
            scope = wire.scope_spans(SCOPE, self._version, spans)
            self._spans.submit(wire.export_trace_request(self._resource_attributes, scope))

    def _sampled(self) -> bool:
        return self.sample_ratio >= 1.0 or random.random() < self.sample_ratio

    def _batch(self, b: BatchRecord, traced: bool) -> None:
        """Histograms count every batch; spans go out only for the batches the sampler keeps."""
        self._engines[b.model] = b.engine
        mode = b.mode
        record = self._metrics.record
        pending = self._pending
        if traced:
            trace, parent = wire.new_trace_id(), wire.new_span_id()
            pending.append(
                wire.span(
                    n.PRISM_BATCH_SPAN,
                    b.start_ns,
                    b.start_ns + b.duration_ns,
                    self._batch_attributes(b),
                    trace=trace,
                    span_id=parent,
                )
            )
        at = b.start_ns
        for stage, timing in b.stages.items():
            metric_attrs = ((n.PRISM_STAGE, stage), (n.PRISM_BATCH_MODE, mode))
            record(n.PRISM_STAGE_DURATION, timing.wall_ns / 1e9, metric_attrs)
            if not traced:
                continue
            stage_attrs = wire.constant_attributes(metric_attrs)
            if timing.device_ns is not None:
                stage_attrs += wire.attribute(n.PRISM_STAGE_DEVICE_NS, timing.device_ns)
            end = at + timing.wall_ns
            name = n.PRISM_STAGE_SPAN_PREFIX + stage
            pending.append(
                wire.span(name, at, end, stage_attrs, trace=trace, span_id=wire.new_span_id(), parent=parent)
            )
            at = end
        record(
            n.PRISM_BATCH_DURATION, b.duration_ns / 1e9, ((n.PRISM_BATCH_MODE, mode), (n.GEN_AI_REQUEST_MODEL, b.model))
        )

    @staticmethod
    def _batch_attributes(b: BatchRecord) -> bytes:
        return b"".join(
            (
                wire.constant_attributes(
                    (
                        (n.PRISM_BATCH_MODE, b.mode),
                        (n.GEN_AI_REQUEST_MODEL, b.model),
                        (n.PRISM_ENGINE, b.engine),
                        (n.PRISM_DEVICE, b.device),
                        (n.PRISM_PID, b.pid),
                    )
                ),
                wire.attribute(n.PRISM_BATCH_SIZE, b.batch_size),
                wire.attribute(n.PRISM_BATCH_PREFILL_TOKENS, b.prefill_tokens),
                wire.attribute(n.PRISM_BATCH_DECODE_TOKENS, b.decode_tokens),
                wire.attribute(n.PRISM_BATCH_AVG_INPUT_LEN, b.avg_input_len),
                wire.attribute(n.PRISM_BATCH_MAX_INPUT_LEN, b.max_input_len),
                wire.attribute(n.PRISM_BATCH_AVG_OUTPUT_LEN, b.avg_output_len),
                wire.attribute(n.PRISM_BATCH_MAX_OUTPUT_LEN, b.max_output_len),
                wire.attribute(n.PRISM_BATCH_KV_TOKENS, b.kv_tokens),
            )
        )

    def _request(self, r: RequestRecord, traced: bool) -> None:
        metric_attrs = (
            (n.GEN_AI_OPERATION_NAME, n.GEN_AI_OPERATION_TEXT_COMPLETION),
            (n.GEN_AI_PROVIDER_NAME, self._engines.get(r.model, "prism")),
            (n.GEN_AI_REQUEST_MODEL, r.model),
        )
        attributes: dict[str, Any] = {
            **dict(metric_attrs),
            n.GEN_AI_RESPONSE_MODEL: r.model,
            n.GEN_AI_USAGE_INPUT_TOKENS: r.input_tokens,
            n.GEN_AI_USAGE_OUTPUT_TOKENS: r.output_tokens,
            n.GEN_AI_RESPONSE_FINISH_REASONS: [r.finish_reason],
            n.PRISM_REQUEST_QUEUE_S: r.queue_s,
        }
        if r.ttft_s is not None:
            attributes[n.PRISM_REQUEST_TTFT_S] = r.ttft_s
            self._metrics.record(n.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, r.ttft_s, metric_attrs)
        if r.tpot_s is not None:
            attributes[n.PRISM_REQUEST_TPOT_S] = r.tpot_s
            self._metrics.record(n.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN, r.tpot_s, metric_attrs)
        self._metrics.record(n.GEN_AI_SERVER_REQUEST_DURATION, r.e2e_s, metric_attrs)
        if not traced:
            return
        self._add_span(
            f"{n.GEN_AI_OPERATION_TEXT_COMPLETION} {r.model}",
            r.arrival_ns,
            r.arrival_ns + int(r.e2e_s * 1e9),
            attributes,
        )

    def _alert(self, a: Alert) -> None:
        # A zero-length span at the alert's time; its attributes mirror the Alert record (suspects included).
        attributes: dict[str, Any] = {
            "prism.alert.score": a.score,
            "prism.alert.threshold": a.threshold,
            "prism.alert.message": a.message,
            "prism.alert.batch_start_ns": a.batch_start_ns,
            "prism.alert.suspects": list(a.suspects),
            n.GEN_AI_REQUEST_MODEL: a.model,
            n.PRISM_DEVICE: a.device,
        }
        self._add_span("prism.alert", a.ts_ns, a.ts_ns, attributes)

    def _add_span(self, name: str, start_ns: int, end_ns: int, attributes: dict[str, Any]) -> None:
        """A root span of its own trace."""
        encoded = b"".join(wire.attribute(k, v) for k, v in attributes.items())
        self._pending.append(
            wire.span(name, start_ns, end_ns, encoded, trace=wire.new_trace_id(), span_id=wire.new_span_id())
        )

    def flush(self) -> None:
        if not self._closed:
            self._submit()
            self._pusher.push()

    def close(self) -> None:
        if not self._closed:
            self._submit()
            self._closed = True
            self._spans.close(EXPORT_TIMEOUT_S)
            self._pusher.close()


def _endpoint(spec: ExportSpec) -> tuple[str, int]:
    host, _, port = spec.target.rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"export spec {spec} needs HOST:PORT, e.g. '{spec.scheme}://127.0.0.1:4317'")
    return host, int(port)


def protocol_for(spec: ExportSpec) -> str:
    """'grpc' or 'http/protobuf'; the bare 'otlp' scheme follows OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL."""
    if spec.scheme == "otlp+grpc":
        return "grpc"
    if spec.scheme == "otlp+http":
        return "http/protobuf"
    env = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = (env or "http/protobuf").strip()
    if protocol not in PROTOCOLS:
        raise UsageError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: Prism exports {' or '.join(PROTOCOLS)}")
    return protocol


def endpoint_address(spec: ExportSpec) -> tuple[str, int] | None:
    """HOST, PORT the spec sends to, when the spec names them (the bare 'otlp' scheme leaves it to the SDK)."""
    return _endpoint(spec) if spec.target else None


class OtlpExporters:
    """Factory for otlp, otlp+grpc://HOST:PORT and otlp+http://HOST:PORT."""

    schemes: tuple[str, ...] = ("otlp", "otlp+grpc", "otlp+http")

    def create(self, spec: ExportSpec) -> Exporter:
        metrics = metric_exporter(spec)
        protocol = protocol_for(spec)
        if spec.scheme != "otlp":
            host, port = _endpoint(spec)
            base = f"http://{host}:{port}"
            headers: dict[str, str] = {}
            endpoint = base if protocol == "grpc" else f"{base}/v1/traces"
        else:
            endpoint, headers = _env_traces_endpoint(protocol)
        ratio = sample_ratio(os.environ)  # checked before the sender starts: a bad value leaves nothing running
        sender = SpanSender(endpoint, protocol=protocol, headers=headers, timeout_s=EXPORT_TIMEOUT_S)
        return OtelExporter(spec, sender, metrics, sample_ratio=ratio)


def metric_exporter(spec: ExportSpec) -> MetricExporter:
    """The OpenTelemetry SDK's OTLP metric exporter for an otlp, otlp+grpc:// or otlp+http:// spec."""
    protocol = protocol_for(spec)
    if spec.scheme == "otlp" and spec.target:
        raise UsageError("the 'otlp' spec takes no target (set OTEL_EXPORTER_OTLP_ENDPOINT, or use otlp+grpc://)")
    address = _endpoint(spec) if spec.scheme != "otlp" else None
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
                OTLPMetricExporter,
            )
    except ImportError as exc:
        raise UsageError(f"{spec} needs the OTLP exporter: pip install 'prism-xpu[otlp]' ({exc})") from exc
    if address is None:
        return OTLPMetricExporter(timeout=EXPORT_TIMEOUT_S)
    base = f"http://{address[0]}:{address[1]}"
    if protocol == "grpc":
        return OTLPMetricExporter(endpoint=base, insecure=True, timeout=EXPORT_TIMEOUT_S)
    return OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=EXPORT_TIMEOUT_S)


def sample_ratio(env: Mapping[str, str]) -> float:
    """The share of batch and request traces to send, from the standard OTEL_TRACES_SAMPLER(_ARG) variables.

    Every Prism trace is a root, so the parent-based samplers act as their root sampler. Alerts are always sent,
    and the histograms count every batch and request whatever the ratio.
    """
    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if name in ("always_on", "parentbased_always_on"):
        return 1.0
    if name in ("always_off", "parentbased_always_off"):
        return 0.0
    if name not in ("traceidratio", "parentbased_traceidratio"):
        known = "always_on, always_off, traceidratio and their parentbased_ forms"
        raise UsageError(f"OTEL_TRACES_SAMPLER={name!r}: Prism supports {known}")
    raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or "1.0"
    try:
        ratio = float(raw)
    except ValueError:
        raise UsageError(f"OTEL_TRACES_SAMPLER_ARG={raw!r}: expected a ratio between 0 and 1") from None
    if not 0.0 <= ratio <= 1.0:
        raise UsageError(f"OTEL_TRACES_SAMPLER_ARG={raw!r}: expected a ratio between 0 and 1")
    return ratio


def _env_traces_endpoint(protocol: str) -> tuple[str, dict[str, str]]:
    """The traces endpoint and headers from the standard OTEL_EXPORTER_OTLP_* variables."""
    env = os.environ
    headers_text = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS") or ""
    headers = dict(h.split("=", 1) for h in headers_text.split(",") if "=" in h)
    headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
    specific = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if specific:
        return specific, headers
    general = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if protocol == "grpc":
        return general or "http://localhost:4317", headers
    return (general or "http://localhost:4318").rstrip("/") + "/v1/traces", headers
