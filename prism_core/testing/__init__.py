"""Public test kit: conformance suites every plugin runs, and shared fakes (pytest is needed to import it)."""

from prism_core.testing.conformance import AcceleratorConformance, FrameworkAdapterConformance
from prism_core.testing.recorders import CallbackSink, InMemoryExporter, RecordingRecorder
from prism_core.testing.vendors import FakeAcl, FakeGpu, FakeNvml, FakeRocml

__all__ = [
    "AcceleratorConformance",
    "CallbackSink",
    "FakeAcl",
    "FakeGpu",
    "FakeNvml",
    "FakeRocml",
    "FrameworkAdapterConformance",
    "InMemoryExporter",
    "RecordingRecorder",
]
