"""Stage delay: a process-wide registry of extra seconds per stage, and the recorder wrapper that applies them.

The interface the framework adapters plug into: the capture session wraps its StageRecorder with
`DelayingRecorder`, and every `end(stage)` on the engine's thread first sleeps for the stage's registered delay,
so the delay lands inside that stage's measured time, as a slow stage would. With nothing registered the
wrapper costs one dict lookup per stage end.
"""

from __future__ import annotations

import threading
import time

from prism_core.capture.stages import StageRecorder
from prism_core.capture.workload import LazyRequests, LazyWorkload

_delays: dict[str, float] = {}
_lock = threading.Lock()


def set_stage_delay(stage: str, seconds: float) -> None:
    if seconds < 0:
        raise ValueError(f"a stage delay cannot be negative, got {seconds}")
    with _lock:
        _delays[stage] = seconds


def clear_stage_delay(stage: str | None = None) -> None:
    """Remove one stage's delay, or all of them."""
    with _lock:
        if stage is None:
            _delays.clear()
        else:
            _delays.pop(stage, None)


def stage_delay(stage: str) -> float:
    return _delays.get(stage, 0.0)


def stage_delays() -> dict[str, float]:
    with _lock:
        return dict(_delays)


class DelayingRecorder:
    """A StageRecorder that sleeps for the registered delay before ending a stage, then forwards everything.

    Every method is spelt out (no `__getattr__`): this sits on the engine's hot path.
    """

    __slots__ = ("inner",)

    def __init__(self, inner: StageRecorder) -> None:
        self.inner = inner

    def begin(self, stage: str) -> None:
        self.inner.begin(stage)

    def end(self, stage: str) -> None:
        delay = _delays.get(stage)
        if delay:
            time.sleep(delay)
        self.inner.end(stage)

    def iteration_begin(self) -> None:
        self.inner.iteration_begin()

    def iteration_end(self, workload: LazyWorkload) -> None:
        self.inner.iteration_end(workload)

    def requests_done(self, requests: LazyRequests) -> None:
        self.inner.requests_done(requests)
