"""OpenTelemetry export: a span per batch with a child span per stage, a GenAI span per request, and histograms.

Nothing here touches the global tracer or meter provider, so a program that configures OpenTelemetry itself keeps
its own: spans are built as OTLP protobuf and shipped by Prism's own sender (otlp_traces.py says why), metrics go
through a private SDK MeterProvider. Stage child spans are laid end to end from the batch's start in
the order the stages first began (adapters report sequential stages, so this is where they ran).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from prism_core.errors import UsageError
from prism_core.export import names as n
from prism_core.export.base import Exporter, ExportSpec
from prism_core.export.otlp_traces import SpanSender, add_span, any_value, trace_id
from prism_core.models import BatchRecord, Record, RequestRecord

if TYPE_CHECKING:
    from opentelemetry.metrics import Observation
    from opentelemetry.sdk.metrics.export import MetricReader

    from prism_core.capture.collector import CaptureStats

EXPORT_TIMEOUT_S = 2.0  # bounds how long an unreachable endpoint can hold up the program's exit
METRIC_INTERVAL_MS = 5_000
SPANS_PER_REQUEST = 512  # spans gathered before one export request is sent ...
SEND_INTERVAL_S = 1.0  # ... or after this long, whichever comes first
PROTOCOLS = ("grpc", "http/protobuf")


class OtelExporter:
    """Records -> OTLP spans (built as protobuf, shipped by a SpanSender) and SDK metrics through `metric_reader`."""

    def __init__(self, spec: ExportSpec, spans: SpanSender, metric_reader: MetricReader) -> None:
        from opentelemetry.proto.trace.v1 import trace_pb2
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource

        from prism_core import __version__

        self.spec = spec
        self._spans = spans
        self._trace_pb2 = trace_pb2
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "prism")})
        self._resource = [(k, any_value(v)) for k, v in resource.attributes.items()]
        self._version = __version__
        self._meter_provider = MeterProvider(resource=resource, metric_readers=[metric_reader])
        meter = self._meter_provider.get_meter("prism", __version__)
        self._ttft = meter.create_histogram(
            n.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, unit="s", explicit_bucket_boundaries_advisory=list(n.TTFT_BUCKETS_S)
        )
        self._tpot = meter.create_histogram(
            n.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN, unit="s", explicit_bucket_boundaries_advisory=list(n.TPOT_BUCKETS_S)
        )
        self._request_duration = meter.create_histogram(
            n.GEN_AI_SERVER_REQUEST_DURATION,
            unit="s",
            explicit_bucket_boundaries_advisory=list(n.REQUEST_DURATION_BUCKETS_S),
        )
        self._batch_duration = meter.create_histogram(
            n.PRISM_BATCH_DURATION, unit="s", explicit_bucket_boundaries_advisory=list(n.BATCH_BUCKETS_S)
        )
        self._stage_duration = meter.create_histogram(
            n.PRISM_STAGE_DURATION, unit="s", explicit_bucket_boundaries_advisory=list(n.BATCH_BUCKETS_S)
        )
        self._stats: Callable[[], CaptureStats] | None = None
        meter.create_observable_counter(n.PRISM_CAPTURE_DROPPED, [self._observe_dropped], unit="{event}")
        meter.create_observable_counter(n.PRISM_CAPTURE_BATCHES, [self._observe_batches], unit="{batch}")
        self._engines: dict[str, str] = {}
        self._scope: Any = None
        self._since = 0.0
        self._closed = False

    def attach_stats(self, stats: Callable[[], CaptureStats]) -> None:
        """Called by the collector: publish its counters (drops included) as metrics."""
        self._stats = stats

    def _observe_dropped(self, options: Any) -> list[Observation]:
        from opentelemetry.metrics import Observation

        return [Observation(self._stats().events_dropped)] if self._stats else []

    def _observe_batches(self, options: Any) -> list[Observation]:
        from opentelemetry.metrics import Observation

        return [Observation(self._stats().batches)] if self._stats else []

    def export(self, records: Sequence[Record]) -> None:
        if self._closed:
            raise RuntimeError(f"{self.spec} is closed")
        if self._scope is None:
            self._scope = self._trace_pb2.ScopeSpans()
            self._scope.scope.name, self._scope.scope.version = "prism", self._version
            self._since = time.monotonic()
        for record in records:
            if isinstance(record, BatchRecord):
                self._batch(self._scope, record)
            elif isinstance(record, RequestRecord):
                self._request(self._scope, record)
        if len(self._scope.spans) >= SPANS_PER_REQUEST or time.monotonic() - self._since >= SEND_INTERVAL_S:
            self._submit()

    def _submit(self) -> None:
        """Ship the spans gathered so far as one ExportTraceServiceRequest."""
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        scope, self._scope = self._scope, None
        if scope is None or not scope.spans:
            return
        request = trace_service_pb2.ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        for key, value in self._resource:
            resource_spans.resource.attributes.add(key=key, value=value)
        resource_spans.scope_spans.append(scope)
        self._spans.submit(request)

    def _batch(self, scope: Any, b: BatchRecord) -> None:
        self._engines[b.model] = b.engine
        attributes: dict[str, Any] = {
            n.PRISM_BATCH_MODE: b.mode,
            n.PRISM_BATCH_SIZE: b.batch_size,
            n.PRISM_BATCH_PREFILL_TOKENS: b.prefill_tokens,
            n.PRISM_BATCH_DECODE_TOKENS: b.decode_tokens,
            n.PRISM_BATCH_AVG_INPUT_LEN: b.avg_input_len,
            n.PRISM_BATCH_MAX_INPUT_LEN: b.max_input_len,
            n.PRISM_BATCH_AVG_OUTPUT_LEN: b.avg_output_len,
            n.PRISM_BATCH_MAX_OUTPUT_LEN: b.max_output_len,
            n.PRISM_BATCH_KV_TOKENS: b.kv_tokens,
            n.GEN_AI_REQUEST_MODEL: b.model,
            n.PRISM_ENGINE: b.engine,
            n.PRISM_DEVICE: b.device,
            n.PRISM_PID: b.pid,
        }
        trace = trace_id()
        parent = add_span(scope, n.PRISM_BATCH_SPAN, b.start_ns, b.start_ns + b.duration_ns, attributes, trace=trace)
        at = b.start_ns
        for stage, timing in b.stages.items():
            stage_attrs: dict[str, Any] = {n.PRISM_STAGE: stage, n.PRISM_BATCH_MODE: b.mode}
            if timing.device_ns is not None:
                stage_attrs[n.PRISM_STAGE_DEVICE_NS] = timing.device_ns
            end = at + timing.wall_ns
            add_span(scope, n.PRISM_STAGE_SPAN_PREFIX + stage, at, end, stage_attrs, trace=trace, parent=parent)
            at = end
            self._stage_duration.record(timing.wall_ns / 1e9, {n.PRISM_STAGE: stage, n.PRISM_BATCH_MODE: b.mode})
        self._batch_duration.record(b.duration_ns / 1e9, {n.PRISM_BATCH_MODE: b.mode, n.GEN_AI_REQUEST_MODEL: b.model})

    def _request(self, scope: Any, r: RequestRecord) -> None:
        metric_attrs: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.GEN_AI_OPERATION_TEXT_COMPLETION,
            n.GEN_AI_PROVIDER_NAME: self._engines.get(r.model, "prism"),
            n.GEN_AI_REQUEST_MODEL: r.model,
        }
        attributes: dict[str, Any] = {
            **metric_attrs,
            n.GEN_AI_RESPONSE_MODEL: r.model,
            n.GEN_AI_USAGE_INPUT_TOKENS: r.input_tokens,
            n.GEN_AI_USAGE_OUTPUT_TOKENS: r.output_tokens,
            n.GEN_AI_RESPONSE_FINISH_REASONS: [r.finish_reason],
            n.PRISM_REQUEST_QUEUE_S: r.queue_s,
        }
        if r.ttft_s is not None:
            attributes[n.PRISM_REQUEST_TTFT_S] = r.ttft_s
            self._ttft.record(r.ttft_s, metric_attrs)
        if r.tpot_s is not None:
            attributes[n.PRISM_REQUEST_TPOT_S] = r.tpot_s
            self._tpot.record(r.tpot_s, metric_attrs)
        self._request_duration.record(r.e2e_s, metric_attrs)
        name = f"{n.GEN_AI_OPERATION_TEXT_COMPLETION} {r.model}"
        add_span(scope, name, r.arrival_ns, r.arrival_ns + int(r.e2e_s * 1e9), attributes, trace=trace_id())

    def flush(self) -> None:
        if not self._closed:
            self._submit()
            self._meter_provider.force_flush(int(EXPORT_TIMEOUT_S * 1000))

    def close(self) -> None:
        if not self._closed:
            self._submit()
            self._closed = True
            self._spans.close(EXPORT_TIMEOUT_S)
            self._meter_provider.shutdown()


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
        protocol = protocol_for(spec)
        address = _endpoint(spec) if spec.scheme != "otlp" else None
        if spec.scheme == "otlp" and spec.target:
            raise UsageError("the 'otlp' spec takes no target (set OTEL_EXPORTER_OTLP_ENDPOINT, or use otlp+grpc://)")
        try:
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            if protocol == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            else:
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
                    OTLPMetricExporter,
                )
        except ImportError as exc:
            raise UsageError(f"{spec} needs the OTLP exporter: pip install 'prism-xpu[otlp]' ({exc})") from exc
        if address is not None:
            host, port = address
            base = f"http://{host}:{port}"
            if protocol == "grpc":
                metrics = OTLPMetricExporter(endpoint=base, insecure=True, timeout=EXPORT_TIMEOUT_S)
            else:
                metrics = OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=EXPORT_TIMEOUT_S)
            headers: dict[str, str] = {}
            endpoint = base if protocol == "grpc" else f"{base}/v1/traces"
        else:
            metrics = OTLPMetricExporter(timeout=EXPORT_TIMEOUT_S)
            endpoint, headers = _env_traces_endpoint(protocol)
        reader = PeriodicExportingMetricReader(
            metrics, export_interval_millis=METRIC_INTERVAL_MS, export_timeout_millis=int(EXPORT_TIMEOUT_S * 1000)
        )
        sender = SpanSender(endpoint, protocol=protocol, headers=headers, timeout_s=EXPORT_TIMEOUT_S)
        return OtelExporter(spec, sender, reader)


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
