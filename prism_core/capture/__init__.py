"""Capture: stage annotation, the event ring, the collector thread, and device timing and telemetry interfaces."""

from prism_core.capture.adapters import FrameworkAdapter
from prism_core.capture.buffer import EventRing
from prism_core.capture.stages import CANONICAL_STAGES, StageRecorder
from prism_core.capture.telemetry import TelemetrySampler
from prism_core.capture.timing import TimingBackend
from prism_core.capture.workload import RequestTiming, Workload

__all__ = [
    "CANONICAL_STAGES",
    "EventRing",
    "FrameworkAdapter",
    "RequestTiming",
    "StageRecorder",
    "TelemetrySampler",
    "TimingBackend",
    "Workload",
]
