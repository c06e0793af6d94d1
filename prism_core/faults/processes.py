"""A base for faults made of worker processes: a noisy neighbour, as a co-located job is.

Processes, not threads of the engine's own interpreter: threads there share its GIL and NumPy's BLAS pool, so two
"compute" threads measured 1.12x on a one-thread engine where two processes of the same loop measured 1.6x
(BENCHMARKS.md). Each worker is one interpreter on one BLAS thread: the worker count is the intensity.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

from prism_core.faults.base import check_intensity

# One thread per worker: the intensity, not a library's thread pool, decides how many cores a fault takes.
_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0))


def crowd(intensity: float, cpus: int) -> int:
    """Workers for a fault that competes for cores: every usable CPU busy, plus ceil(intensity x CPUs) more.

    An engine thread feels a neighbour only when it must share a core. With as many workers as CPUs the scheduler
    sometimes leaves it a core of its own (2 on 2 CPUs: 1.1-1.6x, 10th percentile 1.0-1.1x); with more it always
    shares (4: 2.6-3.9x; BENCHMARKS.md). LatencyPrism's squeeze likewise monopolises every ALU."""
    return cpus + math.ceil(intensity * cpus)


class ProcessFault:
    """Subclasses set name/resource/description and `loop(intensity)`: Python source of one iteration of the
    worker's work, run over and over by `workers(intensity)` processes until stop kills them. A worker whose parent
    is gone stops by itself, so a crashed engine leaves no busy processes behind."""

    name = "base"
    resource = "cpu"
    description = ""
    setup = ""  # Python source a worker runs once, before its loop

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self.params: dict[str, object] = {}

    @property
    def active(self) -> bool:
        return bool(self._procs)

    def workers(self, intensity: float) -> int:
        return crowd(intensity, usable_cpus())

    def loop(self, intensity: float) -> str:
        raise NotImplementedError

    def program(self, intensity: float) -> str:
        body = "\n".join("    " + line for line in self.loop(intensity).splitlines())
        return f"import os\nparent = {os.getpid()}\n{self.setup}\nwhile os.getppid() == parent:\n{body}\n"

    def start(self, intensity: float) -> int:
        check_intensity(intensity)
        if self._procs:
            raise RuntimeError(f"{self.name} is already running")
        onset = time.time_ns()  # before the workers exist: starting them already takes CPU
        n = self.workers(intensity)
        cmd = [sys.executable, "-c", self.program(intensity)]
        env = {**os.environ, **_ONE_THREAD}
        try:
            for _ in range(n):
                self._procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env))
        except BaseException:
            self.stop()  # never leave some of the workers running
            raise
        self.params = {**self.params, "processes": n}
        return onset

    def stop(self) -> int:
        for p in self._procs:
            p.kill()
        for p in self._procs:
            p.wait()
        self._procs = []
        return time.time_ns()
