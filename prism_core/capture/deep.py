"""Deep capture: operator-level timing (torch.profiler) of the next N engine iterations, on the engine's own thread.

torch.profiler records the thread that starts it, so it must start and stop on the engine's thread, between two
iterations. The collector thread cannot call into the engine; instead `arm()` switches the RingRecorder the
adapters already call to `DeepRecorder` by assigning its `__class__` (same slots, so the object and every reference
to it stay valid). Until then the hot path pays nothing: no flag is tested per event. While armed, each stage also
opens a `record_function` range of the same name, so the trace shows Prism's stages with the operators inside
them. After N iterations the engine thread stops the profiler and switches the class back; a short-lived thread
writes the Chrome trace (`PATH.part`, renamed when complete), because the export takes far longer than a batch.

Operator timing slows the batches it covers: whoever reads those batches' latency (the detector) must skip them
while `busy` is true.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prism_core.capture.recorder import RingRecorder
from prism_core.capture.workload import LazyWorkload
from prism_core.models import Unavailable

log = logging.getLogger("prism.capture")

DEFAULT_DEEP_BATCHES = 3  # a SmolLM2-135M batch is ~7,000 operator events: ~2 MB of trace per batch


def torch_profiler_missing() -> Unavailable | None:
    """Why deep capture cannot run in this process, or None."""
    try:
        import torch.profiler  # noqa: F401
    except Exception as exc:  # any import failure means no operator timing, not a broken engine
        why = f"torch.profiler not importable: {exc}"
        return Unavailable(vendor="torch", reason=why, error_type=type(exc).__name__)
    return None


class DeepRecorder(RingRecorder):
    """A RingRecorder that also drives an OperatorCapture. Only ever reached by `__class__` assignment."""

    __slots__ = ()

    def begin(self, stage: str) -> None:
        RingRecorder.begin(self, stage)
        self._deep.begin(stage)

    def end(self, stage: str) -> None:
        self._deep.end(stage)
        RingRecorder.end(self, stage)

    def iteration_begin(self) -> None:
        RingRecorder.iteration_begin(self)
        self._deep.iteration_begin()

    def iteration_end(self, workload: LazyWorkload) -> None:
        RingRecorder.iteration_end(self, workload)
        self._deep.iteration_end()


class OperatorCapture:
    """Arms operator timing on one RingRecorder. `arm` from any thread; the rest runs on the engine's thread."""

    def __init__(self, recorder: RingRecorder, *, batches: int = DEFAULT_DEEP_BATCHES, gpu: bool = False) -> None:
        if batches < 1:
            raise ValueError(f"deep capture needs at least one batch, got {batches}")
        self.recorder = recorder
        self.batches = batches
        self.gpu = gpu  # also record CUDA/HIP kernels (torch's CUDA activity covers ROCm builds too)
        self.written: list[Path] = []
        self._lock = threading.Lock()
        self._left = 0
        self._path: Path | None = None
        self._on_done: Callable[[Path], None] | None = None
        self._profile: Any = None
        self._thread = 0
        self._open: list[tuple[str, Any]] = []
        self._writer: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        """True from `arm` until the profiler has stopped (the trace may still be being written)."""
        return self.recorder.__class__ is DeepRecorder

    def arm(self, path: Path, on_done: Callable[[Path], None] | None = None) -> bool:
        """Profile the next `batches` iterations into `path`; False (and nothing armed) while one is running."""
        with self._lock:
            if self.busy or (self._writer is not None and self._writer.is_alive()):
                return False
            self._left, self._path, self._on_done = self.batches, path, on_done
            self.recorder._deep = self
            self.recorder.__class__ = DeepRecorder
        return True

    # Engine thread ---------------------------------------------------------------------------------------

    def iteration_begin(self) -> None:
        if self._profile is not None:
            return
        try:
            import torch.profiler as tp

            activities = [tp.ProfilerActivity.CPU]
            if self.gpu:
                activities.append(tp.ProfilerActivity.CUDA)
            profile: Any = tp.profile(activities=activities)
            profile.__enter__()
        except Exception as exc:  # no operator timing, but the engine goes on exactly as before
            log.warning("deep capture could not start torch.profiler: %s", exc)
            self._disarm()
            return
        self._profile, self._thread = profile, threading.get_ident()

    def begin(self, stage: str) -> None:
        if self._profile is not None and threading.get_ident() == self._thread:
            from torch.autograd.profiler import record_function

            scope: Any = record_function(stage)
            scope.__enter__()
            self._open.append((stage, scope))

    def end(self, stage: str) -> None:
        if self._open and self._open[-1][0] == stage and threading.get_ident() == self._thread:
            self._open.pop()[1].__exit__(None, None, None)

    def iteration_end(self) -> None:
        if self._profile is None or threading.get_ident() != self._thread:
            return
        self._left -= 1
        if self._left <= 0:
            self.stop()

    def stop(self) -> None:
        """Stop the profiler (on the engine's thread) and hand the trace to a writer thread; idempotent."""
        profile = self._detach(close_ranges=True)
        if profile is None:
            return
        path, on_done = self._path, self._on_done
        assert path is not None
        self._writer = threading.Thread(
            target=self._write, args=(profile, path, on_done), name="prism-deep-export", daemon=True
        )
        self._writer.start()

    def _detach(self, *, close_ranges: bool) -> Any:
        """Disarm and stop the profiler; returns it, stopped, or None when none ran or it failed to stop."""
        with self._lock:
            profile, self._profile = self._profile, None
        if close_ranges:
            while self._open:
                self._open.pop()[1].__exit__(None, None, None)
        self._open.clear()
        self._disarm()
        if profile is None:
            return None
        try:
            profile.__exit__(None, None, None)
        except Exception as exc:
            log.warning("deep capture: torch.profiler failed to stop: %s", exc)
            return None
        return profile

    def _disarm(self) -> None:
        with self._lock:
            self.recorder.__class__ = RingRecorder
            self._thread = 0

    def _write(self, profile: Any, path: Path, on_done: Callable[[Path], None] | None) -> None:
        part = path.with_name(path.name + ".part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            profile.export_chrome_trace(str(part))
            os.replace(part, path)
        except Exception as exc:  # no file, but capture and the engine go on
            log.warning("deep capture trace %s not written: %s", path, exc)
            part.unlink(missing_ok=True)
            return
        self.written.append(path)
        if on_done is not None:
            on_done(path)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop a capture still running, from whichever thread closes; wait for a trace being written."""
        if self._profile is not None and threading.get_ident() != self._thread:
            self._abandon()
        else:
            self.stop()
        if self._writer is not None:
            self._writer.join(timeout_s)

    def _abandon(self) -> None:
        """The engine stopped before the armed batches were done, and the profiler belongs to its thread. Stopped
        from another thread, torch's results are unusable (exporting them crashed the interpreter); left running,
        the interpreter crashed at exit (SIGSEGV; tests/capture/test_deep_capture.py). So: stop, write nothing.
        The engine thread's stage ranges are not ours to close."""
        left = self._left
        if self._detach(close_ranges=False) is not None:
            log.warning("deep capture: the engine stopped %d batch(es) short of the capture; no operator trace", left)
