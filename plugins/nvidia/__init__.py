"""The nvidia plugin: NVML discovery and telemetry, CUDA event timing and VMM, GPU fault injectors."""

from __future__ import annotations

from prism_core import hookimpl
from prism_core.capture import TelemetrySampler, TimingBackend
from prism_core.faults import FaultInjector
from prism_core.memory import VmmBackend
from prism_core.models import Device, Unavailable
from prism_core.vendor import or_none
from prism_plugins.nvidia.faults import nvidia_faults
from prism_plugins.nvidia.probe import VENDOR, probe
from prism_plugins.nvidia.telemetry import nvml_telemetry
from prism_plugins.nvidia.timing import cuda_timing
from prism_plugins.nvidia.vmm import cuda_vmm


@hookimpl
def prism_xpu_probe() -> list[Device] | Unavailable:
    return probe()


@hookimpl
def prism_vmm_backend(device: Device) -> VmmBackend | None:
    if device.vendor != "nvidia":
        return None
    backend = cuda_vmm(device)
    return None if isinstance(backend, Unavailable) else backend


@hookimpl
def prism_timing_backend(device: Device) -> TimingBackend | None:
    return or_none(cuda_timing(device), f"{device.id} device timing") if device.vendor == VENDOR else None


@hookimpl
def prism_telemetry_sampler(device: Device, interval_s: float) -> TelemetrySampler | None:
    if device.vendor != VENDOR:
        return None
    return or_none(nvml_telemetry(device, interval_s), f"{device.id} telemetry")


@hookimpl
def prism_fault_injectors() -> list[FaultInjector]:
    return nvidia_faults()
