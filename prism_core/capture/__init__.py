"""Capture: stage annotation, device timing and telemetry interfaces."""

from prism_core.capture.adapters import FrameworkAdapter
from prism_core.capture.stages import CANONICAL_STAGES, StageRecorder
from prism_core.capture.telemetry import TelemetrySampler
from prism_core.capture.timing import TimingBackend

__all__ = ["CANONICAL_STAGES", "FrameworkAdapter", "StageRecorder", "TelemetrySampler", "TimingBackend"]
