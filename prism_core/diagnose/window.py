"""Diagnosis on an alert: compare the batches before it with those after it, automatically.

Feed it every batch (`observe`) and telemetry sample (`observe_telemetry`); hook `on_alert` to the detector's
`on_escalate`. Once `after` batches have followed the alert, `observe` returns the Diagnosis (and stores it in
`last`); the alert's own batches are the abnormal side, the `before` batches preceding it the normal side.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from prism_core.diagnose.evidence import evidence_of
from prism_core.diagnose.rank import Diagnosis, diagnose
from prism_core.errors import UsageError
from prism_core.models import Alert, BatchRecord, TelemetrySample

log = logging.getLogger("prism.diagnose")


class WindowDiagnoser:
    def __init__(self, before: int = 200, after: int = 50, telemetry: int = 600) -> None:
        self.before, self.after = before, after
        self._history: deque[BatchRecord] = deque(maxlen=before)
        self._telemetry: deque[TelemetrySample] = deque(maxlen=telemetry)
        self._lock = threading.Lock()  # telemetry may arrive from a sampler thread while a diagnosis reads it
        self._normal: list[BatchRecord] | None = None
        self._abnormal: list[BatchRecord] = []
        self.last: Diagnosis | None = None

    def on_alert(self, alert: Alert, _batches: int = 0) -> None:
        if self._normal is None:  # an alert while one is being diagnosed belongs to the same window
            self._normal = list(self._history)
            self._abnormal = []

    def observe_telemetry(self, sample: TelemetrySample) -> None:
        with self._lock:
            self._telemetry.append(sample)

    def observe(self, record: BatchRecord) -> Diagnosis | None:
        if self._normal is None:
            self._history.append(record)
            return None
        self._abnormal.append(record)
        if len(self._abnormal) < self.after:
            return None
        normal, abnormal, self._normal = self._normal, self._abnormal, None
        with self._lock:
            telemetry = list(self._telemetry)
        try:
            self.last = diagnose(evidence_of(normal, telemetry), evidence_of(abnormal, telemetry))
        except UsageError as exc:  # too few batches before the alert, say: report, keep detecting
            log.warning("diagnosis after alert skipped: %s", exc)
            return None
        return self.last
