"""The collector thread: drains the event ring, assembles records, resolves device time, hands records out.

Consumers (`add_consumer`, e.g. the anomaly detector) get each BatchRecord on this thread, in order; exporters get
every record in chunks. Neither may block for long: the ring fills (and drops) while they run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prism_core.capture.assemble import Assembler, PendingBatch
from prism_core.capture.buffer import EventRing
from prism_core.capture.timing import TimingBackend
from prism_core.export import Exporter
from prism_core.models import BatchRecord, Record

log = logging.getLogger("prism.capture")

BatchConsumer = Callable[[BatchRecord], None]

DEVICE_TIMEOUT_NS = 10_000_000_000  # a mark unresolved after this is given up: the batch goes out without device time
MAX_DRAIN = 16_384  # events per pass, so one pass never holds records back for long
# When a pass runs. A pass costs far more than its records (most likely cache misses: it runs after the engine's
# kernels have refilled the caches). On vLLM CPU serving with SmolLM2-135M's shape (~35 ms steps) the collector used
# 268 us of CPU per batch at a pass every 50 ms, 101 us at 250 ms and 68 us at 1 s (`python -m
# prism_plugins.frameworks.vllm.bench --stage-cost --pass-interval S`). Exporters batch for a second or more anyway,
# so a pass runs once a second, or sooner once PASS_EVENTS wait: records keep what they describe alive (vLLM's
# SchedulerOutput of each step) until a pass, and a fast engine should not hold a second of those. The collector looks
# again when, at the rate events came in since the last pass, half of the room to PASS_EVENTS would fill, and at
# least every MAX_TICK_S: each look wakes a thread that must take the GIL from the engine. A batch consumer (the
# online detector) wants each batch promptly: with one attached, the collector looks every TICK_S, and every look is a
# pass.
TICK_S = 0.05
MAX_TICK_S = 1.0
PASS_EVENTS = 4_096  # about 256 engine steps
EXPORT_INTERVAL_S = 1.0
# The collector hands records out in slices of about this much of its own time, then sleeps(0): that releases the
# GIL, so an engine thread coming back from a torch kernel gets it at once instead of after the 5 ms switch
# interval. Each hand-over costs the engine a thread wake-up, so slices trade its worst stall (~1 ms per
# pass) against the number of hand-overs; per-record slices measured ~9 us more collector CPU per batch, and a
# lower throughput under `prism run` (bench capture, 2 cores).
SLICE_NS = 1_000_000
# Records per exporter call. One call per record meant a write system call per record in the JSONL exporter, and
# each write releases the GIL and must win it back from the engine: 480 writes for 384 vLLM steps, against 17 now.
CHUNK = 64


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """Counters a metrics exporter publishes (prism.capture.*)."""

    events_dropped: int
    events_buffered: int
    batches: int
    requests: int
    unplaced_events: int
    device_timeouts: int
    collector_cpu_ns: int  # CPU time of the collector thread (wake-ups and passes): GIL time taken from the engine


class Collector:
    """Owns the assembly state; `start()` runs it on a daemon thread, `close()` flushes everything out."""

    def __init__(
        self,
        ring: EventRing,
        timing: TimingBackend,
        exporters: Sequence[Exporter] = (),
        *,
        interval_s: float | None = None,
    ) -> None:
        self.ring = ring
        self.timing = timing
        self.exporters = list(exporters)
        self._interval_s = interval_s  # a pass every interval_s; None: as the constants above say
        self.device_id = timing.device.id
        self.assembler = Assembler(
            epoch_offset_ns=time.time_ns() - time.perf_counter_ns(), immediate=getattr(timing, "immediate", False)
        )
        self._pending: list[PendingBatch] = []
        self._consumers: list[BatchConsumer] = []
        self._failed: set[int] = set()
        self._batches = 0
        self._requests = 0
        self._device_timeouts = 0
        self._cpu_ns = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one pass at a time: the thread's loop and a caller's flush()
        self._thread: threading.Thread | None = None

    def add_consumer(self, fn: BatchConsumer) -> None:
        """Call `fn(record)` with every BatchRecord, on the collector thread, before exporters see it."""
        self._consumers.append(fn)
        self._wake.set()  # passes for every tick from now on; the first one now

    def add_exporter(self, exporter: Exporter) -> None:
        self.exporters.append(exporter)
        attach = getattr(exporter, "attach_stats", None)
        if callable(attach):
            attach(self.stats)

    def stats(self) -> CaptureStats:
        s = self.assembler.stats
        return CaptureStats(
            events_dropped=self.ring.dropped,
            events_buffered=len(self.ring),
            batches=self._batches,
            requests=self._requests,
            unplaced_events=s.unbalanced + s.outside_iteration + s.bad_payload,
            device_timeouts=self._device_timeouts,
            collector_cpu_ns=self._cpu_ns,
        )

    def start(self) -> None:
        for exporter in self.exporters:
            attach = getattr(exporter, "attach_stats", None)
            if callable(attach):
                attach(self.stats)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prism-collector", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        # Woken by a timer only: the engine's thread never signals it (that would cost the hot path a syscall).
        clock = time.thread_time_ns
        cpu_start = clock()
        last_pass = time.monotonic()
        wait: float | None = self._interval_s or TICK_S
        while not self._stop.is_set():
            self._wake.wait(wait)
            self._wake.clear()
            wait = self._next_wait(last_pass)
            if wait is None:
                last_pass = time.monotonic()
                wait = self._interval_s or TICK_S
                try:
                    self.flush(final=False)
                except Exception:  # the collector must outlive any bug in a record path; say it once per kind
                    log.exception("prism collector pass failed")
            self._cpu_ns = clock() - cpu_start

    def _next_wait(self, last_pass: float) -> float | None:
        """None when a pass is due now; else how long to sleep before looking again."""
        waiting, prompt = len(self.ring), self._interval_s is not None or bool(self._consumers)
        if not waiting and not self._pending:
            # Nothing to pass over. An empty pass still cost ~50 us of CPU a second in each idle process (a vLLM
            # server's API process and workers), which `bench --stage-cost --multiprocess` charged to every batch.
            return (self._interval_s or TICK_S) if prompt else MAX_TICK_S
        if prompt:
            return None
        elapsed = time.monotonic() - last_pass
        if waiting >= PASS_EVENTS or elapsed >= EXPORT_INTERVAL_S:
            return None
        fill_s = (PASS_EVENTS - waiting) * elapsed / waiting / 2 if waiting else MAX_TICK_S
        return min(max(fill_s, TICK_S), MAX_TICK_S, EXPORT_INTERVAL_S - elapsed)

    def flush(self, *, final: bool = True) -> None:
        """One pass: drain, assemble, resolve, deliver. `final` also gives up waiting for device time."""
        with self._lock:
            while True:
                events = self.ring.drain(MAX_DRAIN)
                self.assembler.feed(events)
                self._pending.extend(self.assembler.batches)
                self.assembler.batches.clear()
                records = self._resolved(give_up=final)
                records.extend(self.assembler.requests)
                self._requests += len(self.assembler.requests)
                self.assembler.requests.clear()
                if records:
                    self._deliver(records)
                if len(events) < MAX_DRAIN:
                    break
            if final:
                for exporter in self.exporters:
                    self._guard(exporter, exporter.flush)

    def _resolved(self, *, give_up: bool) -> list[Record]:
        now = time.perf_counter_ns()
        out: list[Record] = []
        keep: list[PendingBatch] = []
        for batch in self._pending:
            device = batch.resolve(self.timing)
            if device is None and not give_up and now - batch.done_at < DEVICE_TIMEOUT_NS:
                keep.append(batch)
                continue
            if device is None:
                self._device_timeouts += 1
            batch.release(self.timing)
            out.append(
                batch.record(
                    device,
                    device_id=self.device_id,
                    pid=self.assembler.pid,
                    epoch_offset_ns=self.assembler.epoch_offset_ns,
                )
            )
        self._pending = keep
        self._batches += len(out)
        return out

    def _deliver(self, records: list[Record]) -> None:
        clock = time.perf_counter_ns
        started = clock()
        for i in range(0, len(records), CHUNK):
            chunk = records[i : i + CHUNK]
            if self._consumers:
                for record in chunk:
                    if isinstance(record, BatchRecord):
                        for consumer in self._consumers:
                            self._guard(consumer, consumer, record)
            for exporter in self.exporters:
                self._guard(exporter, exporter.export, chunk)
            if clock() - started >= SLICE_NS:
                time.sleep(0)
                started = clock()
        time.sleep(0)

    def _guard(self, owner: object, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception as exc:  # one broken consumer or exporter must not starve the others
            if id(owner) not in self._failed:
                self._failed.add(id(owner))
                log.warning("prism: %s failed (further failures not shown): %s", owner, exc)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread, deliver what is left, close exporters. Idempotent."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.flush(final=True)
        for exporter in self.exporters:
            self._guard(exporter, exporter.close)
        self.exporters = []
