"""Public test kit: conformance suites every plugin runs, and shared fakes (pytest is needed to import it)."""

from prism_core.testing.amd_smi import FakeAmdSmi
from prism_core.testing.conformance import AcceleratorConformance, FrameworkAdapterConformance
from prism_core.testing.device_events import FakeCudaEventDriver, FakeHip, fake_torch
from prism_core.testing.otlp import OtlpReceiver, ReceivedSpan
from prism_core.testing.recorders import CallbackSink, DelayedTiming, InMemoryExporter, RecordingRecorder
from prism_core.testing.vendors import FakeAcl, FakeGpu, FakeNvml, FakeRocml
from prism_core.testing.vmm import FakeCudaDriver, VmmConformance
from prism_core.testing.vmm_fakes import FakeAclVmm, FakeHipDriver

__all__ = [
    "AcceleratorConformance",
    "CallbackSink",
    "DelayedTiming",
    "FakeAcl",
    "FakeAclVmm",
    "FakeAmdSmi",
    "FakeCudaDriver",
    "FakeCudaEventDriver",
    "FakeGpu",
    "FakeHip",
    "FakeHipDriver",
    "FakeNvml",
    "FakeRocml",
    "FrameworkAdapterConformance",
    "InMemoryExporter",
    "OtlpReceiver",
    "ReceivedSpan",
    "RecordingRecorder",
    "VmmConformance",
    "fake_torch",
]
