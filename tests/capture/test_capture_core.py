"""The capture core on its own: ring, recorder, assembler and collector with real threads and clocks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from prism_core.capture import collector
from prism_core.capture.assemble import Assembler
from prism_core.capture.buffer import BEGIN, END, EventRing
from prism_core.capture.collector import Collector
from prism_core.capture.recorder import RingRecorder
from prism_core.capture.session import CaptureSession
from prism_core.capture.workload import RequestTiming, Workload
from prism_core.models import BatchRecord, RequestRecord
from prism_core.plugins import PluginHost
from prism_core.testing import DelayedTiming, InMemoryExporter

WORK = Workload(mode="decode", batch_size=4, model="m", engine="e", decode_tokens=4, kv_tokens=40)


def _iteration(rec: RingRecorder) -> None:
    rec.iteration_begin()
    rec.begin("forward")
    rec.begin("sample")
    sum(range(20_000))
    rec.end("sample")
    rec.end("forward")
    rec.begin("postprocess")
    rec.end("postprocess")
    rec.iteration_end(WORK)


def test_full_ring_drops_and_counts_never_blocks(builtin_host: PluginHost) -> None:
    timing = builtin_host.timing_backend(builtin_host.device("cpu:0"))
    assert timing is not None
    ring = EventRing(capacity=10)
    rec = RingRecorder(ring, timing)
    for _ in range(25):
        rec.begin("forward")
    assert len(ring) == 10 and ring.dropped == 15
    assert len(ring.drain(4)) == 4 and len(ring) == 6


def test_nested_stage_time_excludes_children(builtin_host: PluginHost) -> None:
    timing = builtin_host.timing_backend(builtin_host.device("cpu:0"))
    assert timing is not None
    ring = EventRing()
    _iteration(RingRecorder(ring, timing))
    events = ring.drain()
    asm = Assembler(epoch_offset_ns=0)
    asm.feed(events)
    (pending,) = asm.batches
    device = pending.resolve(timing)
    at = {(kind, stage): wall for kind, stage, wall, _, _ in events if kind in (BEGIN, END)}
    record = pending.record(device, device_id="cpu:0", pid=1, epoch_offset_ns=0)
    assert list(record.stages) == ["forward", "sample", "postprocess"]  # the order they began
    assert sum(s.wall_ns for s in record.stages.values()) <= record.duration_ns
    sample = at[END, "sample"] - at[BEGIN, "sample"]
    assert record.stages["sample"].wall_ns == sample
    assert record.stages["forward"].wall_ns == at[END, "forward"] - at[BEGIN, "forward"] - sample
    assert all(s.device_ns is not None for s in record.stages.values())
    assert record.mode == "decode" and record.batch_size == 4 and record.kv_tokens == 40


def test_immediate_device_time_equals_resolved_intervals(builtin_host: PluginHost) -> None:
    """The CPU clock's shortcut (device time summed as stages end) gives what resolving the intervals gives."""
    timing = builtin_host.timing_backend(builtin_host.device("cpu:0"))
    assert timing is not None and getattr(timing, "immediate", False)
    ring = EventRing()
    _iteration(RingRecorder(ring, timing))
    events = ring.drain()
    resolved = {}
    for immediate in (False, True):
        asm = Assembler(epoch_offset_ns=0, immediate=immediate)
        asm.feed(events)
        (pending,) = asm.batches
        assert bool(pending.intervals) is not immediate  # nothing kept to resolve or release
        resolved[immediate] = pending.resolve(timing)
    assert resolved[True] == resolved[False] and set(resolved[True] or {}) == {"forward", "sample", "postprocess"}


def test_unbalanced_and_stray_events_are_counted_not_fatal(builtin_host: PluginHost) -> None:
    timing = builtin_host.timing_backend(builtin_host.device("cpu:0"))
    assert timing is not None
    ring = EventRing()
    rec = RingRecorder(ring, timing)
    rec.begin("forward")  # outside any iteration
    rec.iteration_begin()
    rec.end("sample")  # never begun
    rec.iteration_begin()  # discards the open iteration: an engine step with nothing to do
    rec.begin("forward")
    rec.end("forward")
    rec.iteration_end(lambda: WORK)  # a lazy workload is resolved on the collector side
    asm = Assembler(epoch_offset_ns=0)
    asm.feed(ring.drain())
    assert len(asm.batches) == 1
    assert asm.stats.outside_iteration == 1 and asm.stats.unbalanced == 1


def test_device_time_waits_for_the_backend_then_releases_marks(builtin_host: PluginHost) -> None:
    timing = DelayedTiming(builtin_host.device("cpu:0"))
    exporter = InMemoryExporter()
    session = CaptureSession([exporter], plugin_host=builtin_host, timing=timing)
    seen: list[BatchRecord] = []
    session.add_consumer(seen.append)
    _iteration(session.recorder)
    session.flush()
    assert seen == [] and exporter.records == []  # not resolved yet: held back, engine not blocked
    timing.ready.set()
    session.flush()
    (batch,) = seen
    assert exporter.records == [batch]
    assert all(s.device_ns is not None and s.device_ns >= 0 for s in batch.stages.values())
    assert len(timing.released) == 6  # three stages, two marks each, each released once
    session.close()


def test_requests_become_records_with_latencies(builtin_host: PluginHost) -> None:
    timing = builtin_host.timing_backend(builtin_host.device("cpu:0"))
    assert timing is not None
    ring = EventRing()
    exporter = InMemoryExporter()
    collector = Collector(ring, timing, [exporter])
    ms = 1_000_000
    timings = [RequestTiming(0, 10 * ms, 50 * ms, 250 * ms, 128, 11, "length", "m", "e")]
    RingRecorder(ring, timing).requests_done(lambda: timings)
    collector.close()
    (record,) = exporter.records
    assert isinstance(record, RequestRecord)
    assert (record.queue_s, record.ttft_s, record.e2e_s) == (0.01, 0.05, 0.25)
    assert record.tpot_s is not None and abs(record.tpot_s - 0.02) < 1e-9
    assert exporter.closed


def test_collector_thread_delivers_while_engine_threads_record(memory_session: tuple) -> None:
    session, exporter = memory_session
    threads = [threading.Thread(target=lambda: [_iteration(session.recorder) for _ in range(50)]) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    session.close()
    batches = [r for r in exporter.records if isinstance(r, BatchRecord)]
    assert len(batches) == 150
    assert session.collector.stats().events_dropped == 0
    assert session.collector.stats().unplaced_events == 0


def test_a_failing_consumer_does_not_stop_others(memory_session: tuple) -> None:
    session, exporter = memory_session

    def broken(record: BatchRecord) -> None:
        raise RuntimeError("detector bug")

    session.add_consumer(broken)
    _iteration(session.recorder)
    session.close()
    assert len(exporter.records) == 1


def _wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_passes_wait_for_enough_events_or_a_consumer(memory_session: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    """With only exporters a pass waits for EXPORT_INTERVAL_S or PASS_EVENTS waiting events (passes are costly);
    a batch consumer gets every batch at the next tick."""
    session, exporter = memory_session
    monkeypatch.setattr(collector, "EXPORT_INTERVAL_S", 3600.0)
    _iteration(session.recorder)
    time.sleep(5 * collector.TICK_S)
    assert exporter.records == [] and len(session.ring) == 8  # held: one iteration is not worth a pass
    for _ in range(collector.PASS_EVENTS // 8):
        _iteration(session.recorder)
    assert _wait_for(lambda: len(exporter.records) > collector.PASS_EVENTS // 8)
    seen: list[BatchRecord] = []
    session.add_consumer(seen.append)
    _iteration(session.recorder)
    assert _wait_for(lambda: len(seen) >= 1)
