"""prism-example-plugin: every hook an accelerator plugin implements, on a simulated device."""

from __future__ import annotations

from prism_core import hookimpl
from prism_core.capture import TelemetrySampler, TimingBackend
from prism_core.models import Device
from prism_example_plugin.device import VENDOR, SimulatedTelemetry, SimulatedTiming, simulated_devices


@hookimpl
def prism_xpu_probe() -> list[Device]:
    return simulated_devices()


@hookimpl
def prism_timing_backend(device: Device) -> TimingBackend | None:
    return SimulatedTiming(device) if device.vendor == VENDOR else None


@hookimpl
def prism_telemetry_sampler(device: Device) -> TelemetrySampler | None:
    return SimulatedTelemetry(device) if device.vendor == VENDOR else None
