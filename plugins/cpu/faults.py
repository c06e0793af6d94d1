"""Real CPU faults: each takes a host resource away from the engine while it runs, and gives it back on stop.

Worker threads do their heavy work in NumPy calls that release the GIL, so they take cores, memory bandwidth
or memory from the engine rather than just the interpreter lock; scheduler noise uses separate processes.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import subprocess
import sys
import threading
import time
from collections import deque

import numpy as np

from prism_core.faults.base import FaultInjector, check_intensity
from prism_core.faults.stage_delay import clear_stage_delay, set_stage_delay
from prism_core.faults.threads import ThreadFault
from prism_plugins.cpu.host import meminfo

MIB = 1 << 20


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0))


def _share(intensity: float, n: int) -> int:
    return max(1, round(intensity * n))


class ComputeSqueeze(ThreadFault):
    """Runs round(intensity * usable CPUs) threads (at least one) of matrix multiplies until stopped."""

    name = "cpu.compute_squeeze"
    resource = "cpu"
    description = "threads of dense matrix math take cores away from the engine"

    def workers(self, intensity: float) -> int:
        return _share(intensity, _usable_cpus())

    def work(self, index: int, stop: threading.Event) -> None:
        a = np.random.default_rng(index).standard_normal((256, 256), dtype=np.float32)
        while not stop.is_set():
            a = np.tanh(a @ a)


class MemoryBandwidthSqueeze(ThreadFault):
    """Threads streaming copies between buffers far larger than the caches: they saturate DRAM bandwidth."""

    name = "cpu.memory_bandwidth"
    resource = "memory_bandwidth"
    description = "threads copying 64 MiB buffers back and forth saturate memory bandwidth"
    buffer_bytes = 64 * MIB

    def workers(self, intensity: float) -> int:
        return _share(intensity, _usable_cpus())

    def work(self, index: int, stop: threading.Event) -> None:
        a = np.ones(self.buffer_bytes // 8)
        b = np.empty_like(a)
        while not stop.is_set():
            np.copyto(b, a)
            np.copyto(a, b)


class MemoryPressure(ThreadFault):
    """Holds up to intensity x `max_fraction` of available memory in 64 MiB chunks, and churns it: the oldest
    chunk is freed and a fresh one written, so the kernel keeps reclaiming and faulting pages in."""

    name = "cpu.memory_pressure"
    resource = "memory"
    description = "allocate and churn a share of available memory (page faults, reclaim, cache loss)"
    max_fraction = 0.25
    chunk_bytes = 64 * MIB

    def prepare(self, intensity: float) -> None:
        target = int(intensity * self.max_fraction * meminfo()["MemAvailable"])
        self.params = {"target_bytes": target}
        self._chunks: deque[np.ndarray] = deque()  # type: ignore[type-arg]

    def work(self, index: int, stop: threading.Event) -> None:
        target = int(self.params["target_bytes"])  # type: ignore[call-overload]
        n = max(1, target // self.chunk_bytes)
        while not stop.is_set():
            if len(self._chunks) >= n:
                self._chunks.popleft()
            chunk = np.empty(self.chunk_bytes, dtype=np.uint8)
            chunk.fill(len(self._chunks) & 0xFF)  # touch every page: the memory is really used
            self._chunks.append(chunk)

    def restore(self) -> None:
        self._chunks = deque()


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


class SchedulerNoise:
    """Scheduler contention. `mode="processes"` (default): ceil(intensity x 2 x CPUs) busy processes join the run
    queue. `mode="affinity"`: the target process (`pid`, default this one) is confined to round((1 - intensity)
    x its CPUs) CPUs, at least one; stop restores its CPU set exactly."""

    name = "cpu.scheduler_noise"
    resource = "cpu_scheduler"
    description = "busy processes crowd the run queue, or the engine's CPU affinity is shrunk"

    def __init__(self, mode: str = "processes", pid: int = 0) -> None:
        if mode not in ("processes", "affinity"):
            raise ValueError(f"scheduler noise mode must be processes or affinity, got {mode!r}")
        self.mode = mode
        self.pid = pid
        self.params: dict[str, object] = {"mode": mode}
        self._procs: list[subprocess.Popen[bytes]] = []
        self._saved: set[int] | None = None

    @property
    def active(self) -> bool:
        return bool(self._procs) or self._saved is not None

    def start(self, intensity: float) -> int:
        check_intensity(intensity)
        if self.active:
            raise RuntimeError(f"{self.name} is already running")
        onset = time.time_ns()
        if self.mode == "affinity":
            cpus = sorted(os.sched_getaffinity(self.pid))
            keep = cpus[: max(1, round((1 - intensity) * len(cpus)))]
            self._saved = set(cpus)
            os.sched_setaffinity(self.pid, keep)
            self.params = {"mode": self.mode, "pid": self.pid or os.getpid(), "cpus": len(keep), "of": len(cpus)}
        else:
            n = max(1, math.ceil(intensity * 2 * _usable_cpus()))
            cmd = [sys.executable, "-c", "while True: pass"]
            self._procs = [subprocess.Popen(cmd, stdin=subprocess.DEVNULL) for _ in range(n)]
            self.params = {"mode": self.mode, "processes": n}
        return onset

    def stop(self) -> int:
        if self._saved is not None:
            with contextlib.suppress(ProcessLookupError):  # the target exited meanwhile: nothing to restore
                os.sched_setaffinity(self.pid, self._saved)
            self._saved = None
        for p in self._procs:
            p.kill()
        for p in self._procs:
            p.wait()
        self._procs = []
        return time.time_ns()


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
