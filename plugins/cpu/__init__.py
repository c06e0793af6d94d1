"""The cpu plugin: always available; the host as a device, /proc telemetry, CPU-time stage timing."""

from __future__ import annotations

from prism_core import hookimpl
from prism_core.capture import TelemetrySampler, TimingBackend
from prism_core.faults import FaultInjector
from prism_core.memory import VmmBackend
from prism_core.models import Device
from prism_plugins.cpu.faults import cpu_faults
from prism_plugins.cpu.host import cpu_device
from prism_plugins.cpu.telemetry import ProcTelemetry
from prism_plugins.cpu.timing import CpuTimingBackend
from prism_plugins.cpu.vmm import CpuVmm

VENDOR = "cpu"


@hookimpl
def prism_xpu_probe() -> list[Device]:
    return [cpu_device()]


@hookimpl
def prism_timing_backend(device: Device) -> TimingBackend | None:
    return CpuTimingBackend(device) if device.vendor == VENDOR else None


@hookimpl
def prism_telemetry_sampler(device: Device) -> TelemetrySampler | None:
    return ProcTelemetry(device) if device.vendor == VENDOR else None


@hookimpl
def prism_vmm_backend(device: Device) -> VmmBackend | None:
    return CpuVmm(device) if device.vendor == VENDOR else None


@hookimpl
def prism_fault_injectors() -> list[FaultInjector]:
    return cpu_faults()
