"""Boundedness without timing: a stalled collector never grows the ring past capacity, and drops are exported."""

from __future__ import annotations

import threading

from prism_core.capture.recorder import RingRecorder
from prism_core.capture.session import CaptureSession
from prism_core.capture.workload import Workload
from prism_core.export import names as n
from prism_core.plugins import PluginHost
from prism_core.testing import OtlpReceiver

WORK = Workload(mode="decode", batch_size=2, model="m", engine="e", decode_tokens=2, kv_tokens=20)
CAPACITY = 64


def _iteration(rec: RingRecorder) -> None:
    rec.iteration_begin()
    for stage in ("prepare_inputs", "forward", "sample"):
        rec.begin(stage)
        rec.end(stage)
    rec.iteration_end(WORK)


def _stall(gate: threading.Event) -> None:
    gate.wait(30)


def test_a_stalled_collector_bounds_the_ring_and_the_drops_are_exported(builtin_host: PluginHost) -> None:
    gate = threading.Event()
    with OtlpReceiver() as receiver:
        exporter = builtin_host.exporter(f"otlp+grpc://{receiver.address}")
        session = CaptureSession([exporter], plugin_host=builtin_host, device_id="cpu:0", capacity=CAPACITY)
        session.add_consumer(lambda record: _stall(gate))  # the collector's first pass waits for the gate
        sizes = []
        for _ in range(500):  # 4,000 events into a 64-event ring
            _iteration(session.recorder)
            sizes.append(len(session.ring))
        gate.set()
        session.close()
        stats = session.collector.stats()
        assert max(sizes) <= CAPACITY
        assert stats.events_dropped > 0 and stats.events_buffered == 0
        # every event pushed was either assembled or counted as dropped
        assert receiver.wait_for(lambda r: r.counter_value(n.PRISM_CAPTURE_DROPPED) == stats.events_dropped)
        assert receiver.counter_value(n.PRISM_CAPTURE_BATCHES) == stats.batches
        exported = sum(s.name == n.PRISM_BATCH_SPAN for s in receiver.spans)
    assert 0 < stats.batches < 500 and exported == stats.batches


def test_export_queue_is_bounded_and_counts_what_it_drops() -> None:
    from prism_core.export.otlp_traces import QUEUE_REQUESTS, SpanSender

    with OtlpReceiver() as receiver:
        port = receiver.port
    # Nothing listens now: each send fails after its timeout, so requests pile up and the queue must cap them.
    sender = SpanSender(f"http://127.0.0.1:{port}", protocol="grpc", headers={}, timeout_s=5.0)
    for _ in range(QUEUE_REQUESTS + 50):
        sender.submit(b"")
    assert sender.dropped >= 49
    sender.close(0.1)
