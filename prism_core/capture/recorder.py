"""The StageRecorder the engine's thread calls: two clock readings and a tuple append per event."""

from __future__ import annotations

import threading
import time
from typing import Any

from prism_core.capture.buffer import BEGIN, END, ITERATION_BEGIN, ITERATION_END, REQUESTS, EventRing
from prism_core.capture.timing import TimingBackend
from prism_core.capture.workload import LazyRequests, LazyWorkload


class RingRecorder:
    """Pushes stage events into an EventRing; everything else happens on the collector thread.

    Each method body is `EventRing.push` inlined: on this path a Python call is a measurable share of the
    budget (`prism bench capture` reports the pair cost).
    """

    __slots__ = ("_clock", "_deep", "_events", "_ident", "_mark", "capacity", "ring")

    def __init__(self, ring: EventRing, timing: TimingBackend) -> None:
        self.ring = ring
        self.capacity = ring.capacity
        self._events = ring.events
        self._clock = time.perf_counter_ns
        self._mark = timing.mark
        self._ident = threading.get_ident
        self._deep: Any = None  # the OperatorCapture a DeepRecorder (capture.deep) drives; unused on this class

    def begin(self, stage: str) -> None:
        if len(self._events) < self.capacity:
            self._events.append((BEGIN, stage, self._clock(), self._mark(), self._ident()))
        else:
            self.ring.dropped += 1

    def end(self, stage: str) -> None:
        # Device mark first and wall clock last on `end`, so the wall interval contains the device one.
        if len(self._events) < self.capacity:
            mark = self._mark()
            self._events.append((END, stage, self._clock(), mark, self._ident()))
        else:
            self.ring.dropped += 1

    def iteration_begin(self) -> None:
        if len(self._events) < self.capacity:
            self._events.append((ITERATION_BEGIN, None, self._clock(), 0, self._ident()))
        else:
            self.ring.dropped += 1

    def iteration_end(self, workload: LazyWorkload) -> None:
        if len(self._events) < self.capacity:
            self._events.append((ITERATION_END, workload, self._clock(), 0, self._ident()))
        else:
            self.ring.dropped += 1

    def requests_done(self, requests: LazyRequests) -> None:
        self.ring.push((REQUESTS, requests, self._clock(), 0, self._ident()))  # once per call, not per iteration
