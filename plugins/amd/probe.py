"""Find AMD GPUs through pyrsmi (ROCm SMI)."""

from __future__ import annotations

from typing import Any

from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor, vendor_call

VENDOR = "amd"
HINT = "install ROCm and the extra: pip install 'prism-xpu[amd]'"


def probe() -> list[Device] | Unavailable:
    rocml = import_vendor("pyrsmi.rocml", VENDOR, HINT)
    if isinstance(rocml, Unavailable):
        return rocml
    return vendor_call(VENDOR, lambda: _enumerate(rocml))


def _enumerate(rocml: Any) -> list[Device]:
    rocml.smi_initialize()
    try:
        devices = []
        for i in range(rocml.smi_get_device_count()):
            total = int(rocml.smi_get_device_memory_total(i))
            if total < 0:  # pyrsmi logs and returns -1 instead of raising
                raise RuntimeError(f"ROCm SMI could not read the memory size of device {i}")
            devices.append(
                Device(
                    id=f"{VENDOR}:{i}",
                    vendor=VENDOR,
                    index=i,
                    name=str(rocml.smi_get_device_name(i)),
                    memory_total_bytes=total,
                    properties={"uuid": str(rocml.smi_get_device_uuid(i))},
                )
            )
        return devices
    finally:
        rocml.smi_shutdown()
