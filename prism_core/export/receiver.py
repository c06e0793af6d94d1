"""A real OTLP/gRPC receiver (grpcio + opentelemetry-proto): what `prism top otlp+grpc://HOST:PORT` listens with,
what `prism bench capture` exports to, and what tests of anything that exports read back from.

    with OtlpReceiver() as receiver:
        exporter = host.exporter(f"otlp+grpc://{receiver.address}")
        ...
        receiver.wait_for(lambda r: any(s.name == "prism.batch" for s in r.spans))

`keep_spans=False` only counts spans (long benchmarks); `on_spans` hands each request's spans to a callback on the
gRPC worker thread (`prism top`) instead of keeping them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    kind: int
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass(frozen=True)
class ReceivedMetric:
    name: str
    unit: str
    kind: str
    points: list[dict[str, Any]]


def any_value(value: Any) -> Any:
    """An OTLP AnyValue as the Python value it carries."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


SpanCallback = Callable[[list[ReceivedSpan]], None]


class OtlpReceiver:
    """Accepts OTLP/gRPC traces and metrics on `host` (127.0.0.1; an ephemeral port unless given) and keeps them."""

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        keep_spans: bool = True,
        on_spans: SpanCallback | None = None,
    ) -> None:
        import grpc  # type: ignore[import-untyped]
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        self.spans: list[ReceivedSpan] = []
        self.metrics: list[ReceivedMetric] = []
        self.requests = 0
        self.span_count = 0
        self.keep_spans = keep_spans
        self.on_spans = on_spans
        self._lock = threading.RLock()  # wait_for callbacks may call counter_value
        receiver = self

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._traces(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._metrics(request)
                return metrics_service_pb2.ExportMetricsServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self._server)  # type: ignore[no-untyped-call]
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self._server)  # type: ignore[no-untyped-call]
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if not self.port:
            raise OSError(f"cannot listen on {host}:{port}")
        self.address = f"{host}:{self.port}"

    def _traces(self, request: Any) -> None:
        if not (self.keep_spans or self.on_spans):
            count = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            with self._lock:
                self.span_count += count
                self.requests += 1
            return
        received = []
        for rs in request.resource_spans:
            resource = _attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    received.append(
                        ReceivedSpan(
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            start_ns=s.start_time_unix_nano,
                            end_ns=s.end_time_unix_nano,
                            kind=s.kind,
                            attributes=_attrs(s.attributes),
                            resource=resource,
                        )
                    )
        if self.on_spans is not None:
            self.on_spans(received)
        with self._lock:
            if self.keep_spans:
                self.spans.extend(received)
            self.span_count += len(received)
            self.requests += 1

    def _metrics(self, request: Any) -> None:
        from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]

        received = []
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data") or ""
                    data = MessageToDict(getattr(m, kind)) if kind else {}
                    received.append(ReceivedMetric(m.name, m.unit, kind, data.get("dataPoints", [])))
        with self._lock:
            self.metrics.extend(received)
            self.requests += 1

    def counter_value(self, name: str) -> float | None:
        """The latest value of a cumulative sum (`prism.capture.events_dropped`...), or None if not seen."""
        with self._lock:
            for metric in reversed(self.metrics):
                if metric.name == name and metric.points:
                    point = metric.points[-1]
                    return float(point["asDouble"]) if "asDouble" in point else int(point.get("asInt", 0))
        return None

    def start(self) -> OtlpReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, done: Callable[[OtlpReceiver], bool], timeout_s: float = 15.0) -> bool:
        """Poll until `done(self)` or the timeout; True if it came true."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if done(self):
                    return True
            time.sleep(0.05)
        with self._lock:
            return done(self)
