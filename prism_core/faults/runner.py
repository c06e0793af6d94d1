"""Run a fault for a while, or a schedule of faults in the background, recording the ground truth."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prism_core.errors import UsageError
from prism_core.faults.base import FaultInjector, check_intensity
from prism_core.faults.timeline import FaultEvent, FaultTimeline


def run_fault(
    fault: FaultInjector,
    duration_s: float,
    intensity: float,
    *,
    timeline: FaultTimeline | None = None,
    stop: threading.Event | None = None,
) -> FaultEvent:
    """Start `fault`, keep it on for `duration_s` (or until `stop` is set), always stop it; return the event."""
    check_intensity(intensity)
    if duration_s <= 0:
        raise UsageError(f"duration must be positive, got {duration_s}")
    onset = fault.start(intensity)
    try:
        (stop or threading.Event()).wait(duration_s)
    finally:
        end = fault.stop()
    params = {k: str(v) for k, v in getattr(fault, "params", {}).items()}
    event = FaultEvent(
        name=fault.name, resource=fault.resource, intensity=intensity, onset_ns=onset, end_ns=end, params=params
    )
    if timeline is not None:
        timeline.record(event)
    return event


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    at_s: float  # seconds after the schedule starts
    name: str
    duration_s: float
    intensity: float


class FaultSchedule:
    """Runs scheduled faults one after another on a background thread (what `prism dataset make` uses)."""

    def __init__(
        self, faults: Mapping[str, FaultInjector], plan: Sequence[ScheduledFault], timeline: FaultTimeline
    ) -> None:
        unknown = sorted({p.name for p in plan} - set(faults))
        if unknown:
            raise UsageError(f"unknown fault(s) {', '.join(unknown)} (see `prism faults list`)")
        for p in plan:
            check_intensity(p.intensity)
        self.faults = faults
        self.plan = sorted(plan, key=lambda p: p.at_s)
        self.timeline = timeline
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prism-faults", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import time

        t0 = time.monotonic()
        for p in self.plan:
            if self._stop.wait(max(0.0, p.at_s - (time.monotonic() - t0))):
                return
            run_fault(self.faults[p.name], p.duration_s, p.intensity, timeline=self.timeline, stop=self._stop)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop now: the running fault is stopped and restored, the rest are skipped."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)
