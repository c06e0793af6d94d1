"""A real CPU fault: compute squeeze by threads of dense vector math competing for the cores."""

from __future__ import annotations

import os
import threading
import time

import numpy as np


class ComputeSqueeze:
    """Runs round(intensity * usable CPUs) threads (at least one) of matrix multiplies until stopped.

    NumPy's matmul releases the GIL, so the threads take real cores from the engine.
    """

    name = "cpu.compute_squeeze"
    resource = "cpu"
    description = "threads of dense matrix math take cores away from the engine"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def active(self) -> bool:
        return bool(self._threads)

    def start(self, intensity: float) -> int:
        if not 0 < intensity <= 1:
            raise ValueError(f"intensity must be in (0, 1], got {intensity}")
        if self._threads:
            raise RuntimeError(f"{self.name} is already running")
        self._stop.clear()
        n = max(1, round(intensity * len(os.sched_getaffinity(0))))
        self._threads = [threading.Thread(target=self._spin, name=f"prism-squeeze-{i}", daemon=True) for i in range(n)]
        for t in self._threads:
            t.start()
        return time.time_ns()

    def stop(self) -> int:
        self._stop.set()
        for t in self._threads:
            t.join()
        self._threads = []
        return time.time_ns()

    def _spin(self) -> None:
        a = np.random.default_rng(0).standard_normal((256, 256), dtype=np.float32)
        while not self._stop.is_set():
            a = np.tanh(a @ a)
