"""Turn the event stream into BatchRecords and RequestRecords (collector thread only).

Per engine thread, events form iterations: ITERATION_BEGIN, nested BEGIN/END pairs, ITERATION_END. A stage's
time is its own time, nested stages excluded, so the stages of a batch add up to at most its duration. Device
times are resolved later (`PendingBatch.resolve`): the timing backend may not have reached a mark yet.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import get_args

from prism_core.capture.buffer import BEGIN, END, ITERATION_BEGIN, ITERATION_END, REQUESTS, Event
from prism_core.capture.timing import TimingBackend
from prism_core.capture.workload import RequestTiming, Workload
from prism_core.models import BatchRecord, ForwardMode, RequestRecord

log = logging.getLogger("prism.capture")

FORWARD_MODES = get_args(ForwardMode)

Interval = tuple[str, int, int, int]
"""(stage, sign, start mark, end mark): a stage's device time is the sum of sign * elapsed over its intervals."""


@dataclass(slots=True)
class _Open:
    stage: str
    wall_start: int
    mark_start: int
    child_wall: int = 0
    child_device: int = 0  # immediate timing only: device time of nested stages
    children: list[tuple[int, int]] | None = None  # (start, end) marks of nested stages; most stages have none


@dataclass(slots=True)
class _Iteration:
    start: int
    stack: list[_Open] = field(default_factory=list)
    wall: dict[str, int] = field(default_factory=dict)
    intervals: list[Interval] = field(default_factory=list)
    device: dict[str, int] | None = None  # immediate timing: summed as stages end, like wall


@dataclass(slots=True)
class PendingBatch:
    """A finished iteration whose device times may not be known yet."""

    start_ns: int
    duration_ns: int
    workload: Workload
    wall: dict[str, int]
    intervals: list[Interval]
    done_at: int
    device: dict[str, int] | None = None  # already known (immediate timing)

    def resolve(self, timing: TimingBackend) -> dict[str, int] | None:
        """Device time per stage, or None while any mark is unresolved. Never blocks."""
        if self.device is not None:
            return {k: max(0, v) for k, v in self.device.items()}
        device: dict[str, int] = dict.fromkeys(self.wall, 0)
        for stage, sign, start, end in self.intervals:
            elapsed = timing.elapsed_ns(start, end)
            if elapsed is None:
                return None
            device[stage] += sign * elapsed
        return {k: max(0, v) for k, v in device.items()}

    def release(self, timing: TimingBackend) -> None:
        for mark in {m for _, _, start, end in self.intervals for m in (start, end)}:
            timing.release(mark)

    def record(self, device: dict[str, int] | None, *, device_id: str, pid: int, epoch_offset_ns: int) -> BatchRecord:
        # One validator call for the record and its stages (stages as dicts): pydantic's model_construct is pure
        # Python and slower here, and a StageTiming per stage costs a validator call each (measured ~7 vs ~10 us).
        w = self.workload
        return _validate_batch(
            {
                "start_ns": self.start_ns + epoch_offset_ns,
                "duration_ns": self.duration_ns,
                "mode": w.mode,
                "batch_size": w.batch_size,
                "prefill_tokens": w.prefill_tokens,
                "decode_tokens": w.decode_tokens,
                "avg_input_len": w.avg_input_len,
                "max_input_len": w.max_input_len,
                "avg_output_len": w.avg_output_len,
                "max_output_len": w.max_output_len,
                "kv_tokens": w.kv_tokens,
                "model": w.model,
                "engine": w.engine,
                "device": device_id,
                "pid": pid,
                "stages": {
                    s: {"wall_ns": max(0, wall), "device_ns": None if device is None else device.get(s)}
                    for s, wall in self.wall.items()
                },
            }
        )


_validate_batch: Callable[[dict[str, object]], BatchRecord] = BatchRecord.__pydantic_validator__.validate_python


def _resolve(value: object) -> object:
    return value() if callable(value) else value


@dataclass
class AssemblyStats:
    """Events the assembler could not place (an adapter bug or a lost event), by reason."""

    unbalanced: int = 0
    outside_iteration: int = 0
    bad_payload: int = 0


class Assembler:
    """Stateful: feed events in order; take finished batches and requests."""

    def __init__(self, *, epoch_offset_ns: int, pid: int | None = None, immediate: bool = False) -> None:
        self.epoch_offset_ns = epoch_offset_ns
        # The backend's elapsed time is `end - start`, readable at once (the CPU clock): device time is summed
        # as stages end, as wall time is, instead of keeping intervals to resolve and marks to release.
        self.immediate = immediate
        self.pid = os.getpid() if pid is None else pid
        self.stats = AssemblyStats()
        self._iterations: dict[int, _Iteration] = {}
        self.batches: list[PendingBatch] = []
        self.requests: list[RequestRecord] = []

    def feed(self, events: Iterable[Event]) -> None:
        handlers: dict[int, Callable[[Event], None]] = {
            BEGIN: self._begin,
            END: self._end,
            ITERATION_BEGIN: self._iteration_begin,
            ITERATION_END: self._iteration_end,
            REQUESTS: self._requests,
        }
        for event in events:
            handlers[event[0]](event)

    def _iteration_begin(self, event: Event) -> None:
        self._iterations[event[4]] = _Iteration(start=event[2], device={} if self.immediate else None)

    def _begin(self, event: Event) -> None:
        it = self._iterations.get(event[4])
        if it is None:
            self.stats.outside_iteration += 1
            return
        it.wall.setdefault(event[1], 0)  # stages listed in the order they first began
        it.stack.append(_Open(event[1], event[2], event[3]))

    def _end(self, event: Event) -> None:
        _, stage, wall, mark, thread = event
        it = self._iterations.get(thread)
        if it is None:
            self.stats.outside_iteration += 1
            return
        # The stage most recently begun with this name; anything opened after it and never ended is dropped.
        top = len(it.stack) - 1
        for depth in range(top, -1, -1):
            if it.stack[depth].stage == stage:
                break
        else:
            self.stats.unbalanced += 1
            return
        if depth != top:
            self.stats.unbalanced += top - depth
        stack = it.stack
        opened = stack[depth]
        del stack[depth:]
        total = wall - opened.wall_start
        it.wall[stage] += total - opened.child_wall
        parent = stack[-1] if stack else None
        if it.device is not None:
            spent = max(0, mark - opened.mark_start)
            it.device[stage] = it.device.get(stage, 0) + spent - opened.child_device
            if parent is not None:
                parent.child_device += spent
        else:
            it.intervals.append((stage, 1, opened.mark_start, mark))
            if opened.children:
                it.intervals.extend((stage, -1, s, e) for s, e in opened.children)
            if parent is not None:
                if parent.children is None:
                    parent.children = []
                parent.children.append((opened.mark_start, mark))
        if parent is not None:
            parent.child_wall += total

    def _iteration_end(self, event: Event) -> None:
        it = self._iterations.pop(event[4], None)
        if it is None:
            self.stats.outside_iteration += 1
            return
        if it.stack:
            self.stats.unbalanced += len(it.stack)
        try:
            workload = _resolve(event[1])
        except Exception as exc:  # an adapter's lazy workload must not stop the collector
            log.warning("dropping a batch: its workload could not be computed: %s", exc)
            self.stats.bad_payload += 1
            return
        if not isinstance(workload, Workload) or workload.mode not in FORWARD_MODES:
            self.stats.bad_payload += 1
            return
        self.batches.append(
            PendingBatch(it.start, event[2] - it.start, workload, it.wall, it.intervals, event[2], it.device)
        )

    def _requests(self, event: Event) -> None:
        try:
            timings = list(_resolve(event[1]))  # type: ignore[call-overload]
            records = [self.request_record(t) for t in timings]
        except Exception as exc:  # as above: a broken payload costs its records, not the collector
            log.warning("dropping finished requests: %s", exc)
            self.stats.bad_payload += 1
            return
        self.requests.extend(records)

    def request_record(self, t: RequestTiming) -> RequestRecord:
        first = t.first_token_ns
        decode_tokens = t.output_tokens - 1
        tpot = (t.end_ns - first) / decode_tokens / 1e9 if first is not None and decode_tokens > 0 else None
        return RequestRecord(
            arrival_ns=t.arrival_ns + self.epoch_offset_ns,
            queue_s=max(0, t.scheduled_ns - t.arrival_ns) / 1e9,
            ttft_s=None if first is None else max(0, first - t.arrival_ns) / 1e9,
            tpot_s=None if tpot is None else max(0.0, tpot),
            e2e_s=max(0, t.end_ns - t.arrival_ns) / 1e9,
            input_tokens=t.input_tokens,
            output_tokens=t.output_tokens,
            finish_reason=t.finish_reason,
            model=t.model,
        )
