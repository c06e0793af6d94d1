"""A base for faults made of worker threads: start/stop/restore bookkeeping written once."""

from __future__ import annotations

import threading
import time

from prism_core.faults.base import check_intensity


class ThreadFault:
    """Subclasses set name/resource/description, `workers(intensity)` and `work(index, stop)`; `restore()` undoes
    any setting `prepare(intensity)` changed. `stop` always joins the threads and restores, and is idempotent."""

    name = "base"
    resource = "cpu"
    description = ""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.params: dict[str, object] = {}

    @property
    def active(self) -> bool:
        return bool(self._threads)

    def workers(self, intensity: float) -> int:
        return 1

    def prepare(self, intensity: float) -> None:
        return None

    def restore(self) -> None:
        return None

    def work(self, index: int, stop: threading.Event) -> None:
        raise NotImplementedError

    def start(self, intensity: float) -> int:
        check_intensity(intensity)
        if self._threads:
            raise RuntimeError(f"{self.name} is already running")
        onset = time.time_ns()
        self._stop.clear()
        self.prepare(intensity)
        self._threads = [
            threading.Thread(target=self.work, args=(i, self._stop), name=f"prism-{self.name}-{i}", daemon=True)
            for i in range(self.workers(intensity))
        ]
        for t in self._threads:
            t.start()
        return onset

    def stop(self) -> int:
        self._stop.set()
        for t in self._threads:
            t.join()
        self._threads = []
        self.restore()
        return time.time_ns()
