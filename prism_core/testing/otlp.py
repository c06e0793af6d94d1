"""A real OTLP/gRPC receiver on loopback (grpcio + opentelemetry-proto), for tests of anything that exports.

with OtlpReceiver() as receiver:
    exporter = host.exporter(f"otlp+grpc://{receiver.address}")
    ...
    spans = receiver.wait_for_spans(lambda s: any(x.name == "prism.batch" for x in s))
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


class OtlpReceiver:
    """Accepts OTLP/gRPC traces and metrics on 127.0.0.1 (an ephemeral port unless given) and keeps them."""

    def __init__(self, port: int = 0) -> None:
        import grpc  # type: ignore[import-untyped]
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        self.spans: list[ReceivedSpan] = []
        self.metrics: list[ReceivedMetric] = []
        self.requests = 0
        self._lock = threading.Lock()
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
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        self.address = f"127.0.0.1:{self.port}"

    def _traces(self, request: Any) -> None:
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
        with self._lock:
            self.spans.extend(received)
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
