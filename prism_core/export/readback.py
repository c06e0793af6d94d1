"""Prism's own OTLP spans read back into records: what `prism top otlp+grpc://HOST:PORT` shows.

The exporter (otel.py) sends whole records per request, so a `prism.batch` span and its `prism.stage.*` children
always arrive together; a batch is rebuilt from one request's spans. Spans of other origins are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from prism_core.export import names as n
from prism_core.export.receiver import ReceivedSpan
from prism_core.models import BatchRecord, Record, RequestRecord

RecordSink = Callable[[list[Record]], None]


def batch_record(span: ReceivedSpan, stages: Sequence[ReceivedSpan]) -> BatchRecord:
    a = span.attributes
    return BatchRecord(
        start_ns=span.start_ns,
        duration_ns=max(0, span.end_ns - span.start_ns),
        mode=a[n.PRISM_BATCH_MODE],
        batch_size=a[n.PRISM_BATCH_SIZE],
        prefill_tokens=a.get(n.PRISM_BATCH_PREFILL_TOKENS, 0),
        decode_tokens=a.get(n.PRISM_BATCH_DECODE_TOKENS, 0),
        avg_input_len=a.get(n.PRISM_BATCH_AVG_INPUT_LEN, 0.0),
        max_input_len=a.get(n.PRISM_BATCH_MAX_INPUT_LEN, 0),
        avg_output_len=a.get(n.PRISM_BATCH_AVG_OUTPUT_LEN, 0.0),
        max_output_len=a.get(n.PRISM_BATCH_MAX_OUTPUT_LEN, 0),
        kv_tokens=a.get(n.PRISM_BATCH_KV_TOKENS, 0),
        model=a[n.GEN_AI_REQUEST_MODEL],
        engine=a.get(n.PRISM_ENGINE, ""),
        device=a.get(n.PRISM_DEVICE, ""),
        pid=a.get(n.PRISM_PID, 0),
        stages={
            s.attributes.get(n.PRISM_STAGE, s.name.removeprefix(n.PRISM_STAGE_SPAN_PREFIX)): {
                "wall_ns": max(0, s.end_ns - s.start_ns),
                "device_ns": s.attributes.get(n.PRISM_STAGE_DEVICE_NS),
            }
            for s in sorted(stages, key=lambda s: s.start_ns)
        },
    )


def request_record(span: ReceivedSpan) -> RequestRecord:
    a = span.attributes
    reasons: Any = a.get(n.GEN_AI_RESPONSE_FINISH_REASONS) or [""]
    return RequestRecord(
        arrival_ns=span.start_ns,
        queue_s=a.get(n.PRISM_REQUEST_QUEUE_S, 0.0),
        ttft_s=a.get(n.PRISM_REQUEST_TTFT_S),
        tpot_s=a.get(n.PRISM_REQUEST_TPOT_S),
        e2e_s=max(0, span.end_ns - span.start_ns) / 1e9,
        input_tokens=a[n.GEN_AI_USAGE_INPUT_TOKENS],
        output_tokens=a[n.GEN_AI_USAGE_OUTPUT_TOKENS],
        finish_reason=str(reasons[0]),
        model=a[n.GEN_AI_REQUEST_MODEL],
    )


class SpanRecords:
    """An `OtlpReceiver(on_spans=...)` callback: rebuilds records from each request's spans, hands them to `sink`."""

    def __init__(self, sink: RecordSink) -> None:
        self.sink = sink
        self.skipped = 0  # spans that looked like Prism's but did not make a valid record

    def __call__(self, spans: list[ReceivedSpan]) -> None:
        children: dict[str, list[ReceivedSpan]] = {}
        for s in spans:
            if s.name.startswith(n.PRISM_STAGE_SPAN_PREFIX):
                children.setdefault(s.parent_span_id, []).append(s)
        records: list[Record] = []
        for s in spans:
            try:
                if s.name == n.PRISM_BATCH_SPAN:
                    records.append(batch_record(s, children.get(s.span_id, [])))
                elif s.attributes.get(n.GEN_AI_OPERATION_NAME) and n.GEN_AI_USAGE_OUTPUT_TOKENS in s.attributes:
                    records.append(request_record(s))
            except (KeyError, ValidationError):
                self.skipped += 1
        if records:
            self.sink(records)
