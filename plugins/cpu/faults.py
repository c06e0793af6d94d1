"""Real CPU faults: each takes a host resource away from the engine while it runs, and gives it back on stop.

Compute, memory bandwidth, memory pressure and scheduler noise are worker processes beside the engine, as a
co-located job is (prism_core.faults.processes); the GC storm and the stage delay act inside the engine's own
interpreter, where their resource is.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time

from prism_core.faults.base import FaultInjector, check_intensity
from prism_core.faults.processes import ProcessFault
from prism_core.faults.stage_delay import clear_stage_delay, set_stage_delay
from prism_core.faults.threads import ThreadFault
from prism_plugins.cpu.host import meminfo

MIB = 1 << 20


class ComputeSqueeze(ProcessFault):
    """Processes of dense matrix math (each on one BLAS thread): every usable CPU busy, plus intensity x CPUs."""

    name = "cpu.compute_squeeze"
    resource = "cpu"
    description = "processes of dense matrix math take cores away from the engine"
    setup = "import numpy as np\na = np.random.default_rng(0).standard_normal((256, 256), dtype=np.float32)"

    def loop(self, intensity: float) -> str:
        return "a = np.tanh(a @ a)"


class MemoryBandwidthSqueeze(ProcessFault):
    """Processes streaming copies between buffers far larger than the caches: they saturate DRAM bandwidth."""

    name = "cpu.memory_bandwidth"
    resource = "memory_bandwidth"
    description = "processes copying 64 MiB buffers back and forth saturate memory bandwidth"
    setup = f"import numpy as np\na = np.ones({64 * MIB // 8})\nb = np.empty_like(a)"

    def loop(self, intensity: float) -> str:
        return "np.copyto(b, a)\nnp.copyto(a, b)"


class MemoryPressure(ProcessFault):
    """Processes that together hold up to intensity x `max_fraction` of available memory in 64 MiB chunks, and
    churn it: the oldest chunk is freed and a fresh one written, so the kernel keeps faulting pages in and zeroing
    them."""

    name = "cpu.memory_pressure"
    resource = "memory"
    description = "allocate and churn a share of available memory (page faults, reclaim, cache loss)"
    max_fraction = 0.25
    chunk_bytes = 64 * MIB
    setup = "import collections\nimport numpy as np\nheld = collections.deque()"

    def loop(self, intensity: float) -> str:
        target = int(intensity * self.max_fraction * meminfo()["MemAvailable"])
        chunks = max(1, target // self.chunk_bytes // self.workers(intensity))
        self.params = {"target_bytes": target}
        return (
            f"if len(held) >= {chunks}:\n    held.popleft()\n"
            f"chunk = np.empty({self.chunk_bytes}, dtype=np.uint8)\n"
            "chunk.fill(len(held) & 0xFF)  # touch every page: the memory is really used\nheld.append(chunk)"
        )


class GcStorm(ThreadFault):
    """Lowers the collector's thresholds and keeps a large live object graph plus cyclic garbage coming, so
    full collections run often and each walks the graph while holding the GIL: the engine thread stalls."""

    name = "cpu.gc_storm"
    resource = "python_gc"
    description = "frequent full garbage collections over a large live object graph stall the interpreter"
    live_objects = 300_000

    def prepare(self, intensity: float) -> None:
        self._thresholds = gc.get_threshold()
        self._live = [[i] for i in range(int(intensity * self.live_objects))]
        self.params = {"live_objects": len(self._live), "pause_s": round(0.01 * (1 - intensity), 4)}
        gc.set_threshold(100, 2, 2)

    def work(self, index: int, stop: threading.Event) -> None:
        pause = float(self.params["pause_s"])  # type: ignore[arg-type]
        while not stop.is_set():
            for _ in range(1000):
                cycle: list[object] = []
                cycle.append(cycle)
            gc.collect()
            if pause:
                stop.wait(pause)

    def restore(self) -> None:
        gc.set_threshold(*self._thresholds)
        self._live = []


class SchedulerNoise(ProcessFault):
    """Scheduler contention. `mode="processes"` (default): busy interpreter loops join the run queue (every usable
    CPU busy, plus intensity x CPUs). `mode="affinity"`: the target process (`pid`, default this one) is confined to
    round((1 - intensity) x its CPUs) CPUs, at least one; stop restores its CPU set exactly."""

    name = "cpu.scheduler_noise"
    resource = "cpu_scheduler"
    description = "busy processes crowd the run queue, or the engine's CPU affinity is shrunk"

    def __init__(self, mode: str = "processes", pid: int = 0) -> None:
        if mode not in ("processes", "affinity"):
            raise ValueError(f"scheduler noise mode must be processes or affinity, got {mode!r}")
        super().__init__()
        self.mode = mode
        self.pid = pid
        self.params = {"mode": mode}
        self._saved: set[int] | None = None

    @property
    def active(self) -> bool:
        return super().active or self._saved is not None

    def loop(self, intensity: float) -> str:
        return "pass"

    def start(self, intensity: float) -> int:
        if self.mode == "processes":
            return super().start(intensity)
        check_intensity(intensity)
        if self.active:
            raise RuntimeError(f"{self.name} is already running")
        onset = time.time_ns()
        cpus = sorted(os.sched_getaffinity(self.pid))
        keep = cpus[: max(1, round((1 - intensity) * len(cpus)))]
        self._saved = set(cpus)
        os.sched_setaffinity(self.pid, keep)
        self.params = {"mode": self.mode, "pid": self.pid or os.getpid(), "cpus": len(keep), "of": len(cpus)}
        return onset

    def stop(self) -> int:
        if self._saved is not None:
            with contextlib.suppress(ProcessLookupError):  # the target exited meanwhile: nothing to restore
                os.sched_setaffinity(self.pid, self._saved)
            self._saved = None
        return super().stop()


class StageDelay:
    """Sleeps intensity x `max_delay_s` inside one named stage of every iteration, through the stage-delay
    registry that the capture session's DelayingRecorder consults (prism_core.faults.stage_delay)."""

    name = "cpu.stage_delay"
    resource = "stage"
    description = "a sleep inserted into one named engine stage (needs an instrumented engine in this process)"

    def __init__(self, stage: str = "forward", max_delay_s: float = 0.05) -> None:
        self.stage = stage
        self.max_delay_s = max_delay_s
        self.params: dict[str, object] = {"stage": stage}
        self._on = False

    @property
    def active(self) -> bool:
        return self._on

    def start(self, intensity: float) -> int:
        check_intensity(intensity)
        if self._on:
            raise RuntimeError(f"{self.name} is already running")
        delay = intensity * self.max_delay_s
        set_stage_delay(self.stage, delay)
        self.params = {"stage": self.stage, "delay_s": delay}
        self._on = True
        return time.time_ns()

    def stop(self) -> int:
        if self._on:
            clear_stage_delay(self.stage)
            self._on = False
        return time.time_ns()


def cpu_faults() -> list[FaultInjector]:
    """Every CPU fault, created idle."""
    return [ComputeSqueeze(), MemoryBandwidthSqueeze(), MemoryPressure(), SchedulerNoise(), GcStorm(), StageDelay()]
