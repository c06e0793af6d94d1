"""The nvidia plugin: NVML device discovery (timing, telemetry, VMM and faults arrive with their issues)."""

from __future__ import annotations

from prism_core import hookimpl
from prism_core.models import Device, Unavailable
from prism_plugins.nvidia.probe import probe


@hookimpl
def prism_xpu_probe() -> list[Device] | Unavailable:
    return probe()
