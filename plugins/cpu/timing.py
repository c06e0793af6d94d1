"""Stage timing on the CPU: a stage's 'device time' is the CPU time the engine's thread spent in it.

Wall time minus this is time the engine thread was off a core (preempted by contention, blocked, sleeping).
Process CPU time would be wrong here: BLAS and OpenMP worker threads spin-wait after parallel regions and
would bill idle stages. A mark is the clock reading itself, so nothing is pooled and release is free.
"""

from __future__ import annotations

import time

from prism_core.models import Device


class CpuTimingBackend:
    immediate = True  # elapsed is end - start, known at once: the assembler sums it as stages end

    def __init__(self, device: Device) -> None:
        self.device = device
        self.mark = time.thread_time_ns  # bound once: the hot path is a single C call

    def elapsed_ns(self, start: int, end: int) -> int | None:
        return max(0, end - start)

    def release(self, mark: int) -> None:
        return None

    def close(self) -> None:
        return None
