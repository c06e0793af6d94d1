"""The sender thread that ships encoded OTLP trace requests over gRPC or HTTP.

Requests arrive already encoded (wire.py says why spans are encoded by hand); the sender only moves bytes, so the
collector thread never waits on the network and never serialises anything here.
"""

from __future__ import annotations

import logging
import queue
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

log = logging.getLogger("prism.export")

QUEUE_REQUESTS = 256  # pending export requests; past this new ones are dropped (and counted), never waited for
TRACE_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class SpanSender:
    """Ships encoded ExportTraceServiceRequests from a daemon thread; the caller never waits on the network."""

    def __init__(self, endpoint: str, *, protocol: str, headers: dict[str, str], timeout_s: float) -> None:
        self.endpoint = endpoint
        self.protocol = protocol
        self.headers = headers
        self.timeout_s = timeout_s
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._channel: Any = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_REQUESTS)
        self._send: Callable[[bytes], None] = self._grpc() if protocol == "grpc" else self._http
        self._thread = threading.Thread(target=self._run, name="prism-otlp-spans", daemon=True)
        self._thread.start()

    def _grpc(self) -> Callable[[bytes], None]:
        import grpc  # type: ignore[import-untyped]

        target = self.endpoint.split("://", 1)[-1]
        secure = self.endpoint.startswith("https://")
        channel = (
            grpc.secure_channel(target, grpc.ssl_channel_credentials()) if secure else grpc.insecure_channel(target)
        )
        self._channel = channel
        # The request is bytes already: identity serialiser; the (empty) response is not decoded.
        export = channel.unary_unary(TRACE_EXPORT_METHOD, request_serializer=bytes, response_deserializer=bytes)
        metadata = tuple(self.headers.items())

        def send(request: bytes) -> None:
            export(request, timeout=self.timeout_s, metadata=metadata)

        return send

    def _http(self, request: bytes) -> None:
        headers = {"Content-Type": "application/x-protobuf", **self.headers}
        req = urllib.request.Request(self.endpoint, data=request, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout_s) as response:
            response.read()

    def submit(self, request: bytes) -> None:
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            request = self._queue.get()
            if request is None:
                return
            try:
                self._send(request)
                self.sent += 1
            except Exception as exc:  # an unreachable backend costs its spans, never the program
                self.failed += 1
                if self.failed == 1:
                    log.info("OTLP span export to %s failed: %s", self.endpoint, exc)

    def close(self, timeout_s: float) -> None:
        """Send what is queued (within `timeout_s`), then stop. Idempotent."""
        if self._thread.is_alive():
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:
                return
            self._thread.join(timeout_s)
        if self._channel is not None:
            self._channel.close()
            self._channel = None
