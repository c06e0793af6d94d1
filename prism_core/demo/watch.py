"""The demo's detection act: the online detector on the demo's session, a fault injected mid-run, and what came of it.

`DemoWatch.start(session, ...)` attaches online detection (warm-up learning, alerts printed as they fire, escalation
windows, diagnosis) and schedules one fault; `finish()` stops the fault and returns the facts the report shows.
Without LightGBM (the `detect` extra) there is no warm-up fit: the demo says so and runs without detection.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prism_core.capture.session import CaptureSession
from prism_core.detect.detector import DetectorConfig
from prism_core.detect.online import OnlineDetection
from prism_core.detect.sinks import FunctionSink
from prism_core.errors import UsageError
from prism_core.faults.base import check_intensity
from prism_core.faults.runner import FaultSchedule, ScheduledFault
from prism_core.faults.timeline import FaultTimeline
from prism_core.models import Alert


@dataclass(frozen=True, slots=True)
class FaultPlan:
    name: str
    intensity: float
    at_s: float
    duration_s: float


def parse_fault(text: str, at_s: float, duration_s: float, known: list[str]) -> FaultPlan | None:
    """`NAME[:INTENSITY]` (default intensity 1), or `none`."""
    if text.strip().lower() == "none":
        return None
    name, _, level = text.strip().partition(":")
    if name not in known:
        raise UsageError(f"unknown fault {name!r} for --fault (see `prism faults list`, or 'none')")
    try:
        intensity = float(level) if level else 1.0
    except ValueError:
        raise UsageError(f"--fault {text!r}: intensity must be a number in (0, 1]") from None
    check_intensity(intensity)
    return FaultPlan(name, intensity, at_s, duration_s)


class DemoWatch:
    def __init__(
        self,
        session: CaptureSession,
        out: Path,
        fault: FaultPlan | None,
        *,
        warmup: int,
        escalate: int,
        say: Callable[[str], None],
    ) -> None:
        self.out = out
        self.fault = fault
        self.say = say
        self.online: OnlineDetection | None = None
        self.timeline = FaultTimeline(out / "faults.jsonl")
        self.schedule: FaultSchedule | None = None
        self._faults = session.host.fault_injectors() if fault is not None else {}
        self._stop = threading.Event()
        self._starter: threading.Thread | None = None
        if importlib.util.find_spec("lightgbm") is None:
            say("no detection: the warm-up fit needs LightGBM (pip install 'prism-xpu[detect]')")
        else:
            self.online = OnlineDetection(
                session.collector,
                sinks=[FunctionSink(self._on_alert, name="demo")],
                config=DetectorConfig(warmup_batches=warmup, escalate_batches=escalate),
                window_dir=out / "alerts",
                make_exporter=session.host.exporter,
                sampler=session.host.telemetry_sampler(session.timing.device, 0.25),
                keep_history=True,
                deep=session.operator_capture(),
            )

    def start(self) -> None:
        """Inject the fault at --fault-at, but never before the detector has learnt what normal looks like:
        a slow model may not have served its warm-up batches by then, and a fault during warm-up teaches it."""
        if self.fault is None:
            return
        self._starter = threading.Thread(target=self._start_fault, name="prism-demo-fault", daemon=True)
        self._starter.start()

    def _start_fault(self) -> None:
        f = self.fault
        assert f is not None
        t0 = time.monotonic()
        if self.online is not None:
            detector = self.online.detector
            while not detector.wait_ready(0.1) and detector.fit_error is None:  # a failed fit never gets ready
                if self._stop.is_set():
                    return
        if self._stop.wait(max(0.0, f.at_s - (time.monotonic() - t0))):
            return
        at = time.monotonic() - t0
        self.say(f"fault: {f.name} at intensity {f.intensity} from {at:.1f} s for {f.duration_s:.1f} s")
        plan = [ScheduledFault(0.0, f.name, f.duration_s, f.intensity)]
        self.schedule = FaultSchedule(self._faults, plan, self.timeline)
        self.schedule.start()

    def _on_alert(self, alert: Alert) -> None:
        if alert.suspects:
            self.say(f"[bold]diagnosis[/]: {'; '.join(alert.suspects)}")
        else:
            self.say(f"[bold red]ALERT[/] {alert.message} (score {alert.score:.3f} > {alert.threshold:.3f})")

    def finish(self) -> dict[str, Any]:
        """Stop the fault (if still on) and detection; write diagnosis.json; return facts for the summary."""
        self._stop.set()
        if self._starter is not None:
            self._starter.join()
        if self.schedule is not None:
            self.schedule.stop()
        facts: dict[str, Any] = {"fault": None, "detector": None}
        events = self.timeline.events
        if events:
            e = events[0]
            facts["fault"] = {"name": e.name, "intensity": e.intensity, "onset_ns": e.onset_ns, "end_ns": e.end_ns}
        online = self.online
        if online is None:
            return facts
        online.close()
        det = online.detector
        facts["detector"] = {
            "ready": det.ready,
            "warmup_batches": det.config.warmup_batches,
            "threshold": det.chart.threshold if det.chart is not None else None,
            "alerts": det.alerts,
            "alert_windows": [str(p) for p in online.windows],
            "operator_traces": [str(p) for p in online.deep.written] if online.deep is not None else [],
        }
        if online.diagnosed:
            alert, diagnosis = online.diagnosed[-1] if not events else _nearest(online.diagnosed, events[0].onset_ns)
            facts["diagnosis"] = {"alert": alert.model_dump(mode="json"), **diagnosis.to_dict()}
            (self.out / "diagnosis.json").write_text(json.dumps(facts["diagnosis"], indent=2) + "\n")
        return facts


def _nearest(diagnosed: list[tuple[Alert, Any]], onset_ns: int) -> tuple[Alert, Any]:
    """The first diagnosed alert raised after the fault's onset (else the last one)."""
    after = [d for d in diagnosed if d[0].ts_ns >= onset_ns]
    return after[0] if after else diagnosed[-1]
