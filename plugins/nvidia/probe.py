"""Find NVIDIA GPUs through NVML (nvidia-ml-py)."""

from __future__ import annotations

from typing import Any

from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor, vendor_call

VENDOR = "nvidia"
HINT = "install the extra: pip install 'prism-xpu[nvidia]'"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def probe() -> list[Device] | Unavailable:
    nvml = import_vendor("pynvml", VENDOR, HINT)  # the module nvidia-ml-py installs
    if isinstance(nvml, Unavailable):
        return nvml
    return vendor_call(VENDOR, lambda: _enumerate(nvml))


def _enumerate(nvml: Any) -> list[Device]:
    nvml.nvmlInit()
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        devices = []
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            major, minor = nvml.nvmlDeviceGetCudaComputeCapability(h)
            devices.append(
                Device(
                    id=f"{VENDOR}:{i}",
                    vendor=VENDOR,
                    index=i,
                    name=_text(nvml.nvmlDeviceGetName(h)),
                    memory_total_bytes=int(nvml.nvmlDeviceGetMemoryInfo(h).total),
                    properties={
                        "uuid": _text(nvml.nvmlDeviceGetUUID(h)),
                        "pci_bus_id": _text(nvml.nvmlDeviceGetPciInfo(h).busId),
                        "compute_capability": f"{major}.{minor}",
                        "driver_version": driver,
                    },
                )
            )
        return devices
    finally:
        nvml.nvmlShutdown()
