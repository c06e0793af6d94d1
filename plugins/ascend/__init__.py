"""The ascend plugin: pyACL discovery and event timing, pyACL and npu-smi telemetry, NPU fault injectors."""

from __future__ import annotations

from prism_core import hookimpl
from prism_core.capture import TelemetrySampler, TimingBackend
from prism_core.faults import FaultInjector
from prism_core.memory import VmmBackend
from prism_core.models import Device, Unavailable
from prism_core.vendor import or_none
from prism_plugins.ascend.faults import ascend_faults
from prism_plugins.ascend.probe import VENDOR, probe
from prism_plugins.ascend.telemetry import ascend_telemetry
from prism_plugins.ascend.timing import acl_timing
from prism_plugins.ascend.vmm import acl_vmm


@hookimpl
def prism_xpu_probe() -> list[Device] | Unavailable:
    return probe()


@hookimpl
def prism_vmm_backend(device: Device) -> VmmBackend | None:
    return or_none(acl_vmm(device), f"{device.id} virtual memory") if device.vendor == VENDOR else None


@hookimpl
def prism_timing_backend(device: Device) -> TimingBackend | None:
    return or_none(acl_timing(device), f"{device.id} device timing") if device.vendor == VENDOR else None


@hookimpl
def prism_telemetry_sampler(device: Device, interval_s: float) -> TelemetrySampler | None:
    if device.vendor != VENDOR:
        return None
    return or_none(ascend_telemetry(device, interval_s), f"{device.id} telemetry")


@hookimpl
def prism_fault_injectors() -> list[FaultInjector]:
    return ascend_faults()
