"""AMD telemetry: pyrsmi for what it has, amdsmi for clocks and temperature.

pyrsmi 1.1 (https://github.com/ROCm/pyrsmi) reports utilisation and memory-busy in percent, memory in bytes,
average socket power in W and PCIe throughput in bytes/s (both directions together), and -1 on any failure,
which goes to `unreadable`. It has no clock or temperature getters, so those come from amdsmi
(https://rocm.docs.amd.com/projects/amdsmi/): `amdsmi_get_clock_info` (MHz, key "clk") for GFX and MEM, and
`amdsmi_get_temp_metric` (degrees C) for the HOTSPOT (junction) sensor. Without amdsmi those three fields are
unreadable with the import's reason. XGMI throughput and ECC counts are not read yet.
"""

from __future__ import annotations

from typing import Any

from prism_core.capture.readings import Readings, Unreadable, not_negative
from prism_core.export import names
from prism_core.models import Device, TelemetrySample, Unavailable
from prism_core.vendor import import_vendor, vendor_call
from prism_plugins.amd.probe import HINT, VENDOR
from prism_plugins.amd.smi import AmdSmi, open_amdsmi

PERCENT = 0.01
MHZ = 1e6

PYRSMI_FIELDS = (
    names.HW_GPU_UTILIZATION,
    names.PRISM_GPU_MEMORY_BUSY,
    names.HW_GPU_MEMORY_USAGE,
    names.HW_GPU_MEMORY_LIMIT,
    names.HW_POWER,
    names.PRISM_GPU_PCIE_THROUGHPUT,
)
AMDSMI_FIELDS = (names.PRISM_GPU_CLOCK_SM, names.PRISM_GPU_CLOCK_MEMORY, names.HW_TEMPERATURE)


class RocmTelemetry:
    def __init__(self, rocml: Any, device: Device, interval_s: float = 1.0, smi: AmdSmi | Unavailable | None = None):
        self.device = device
        self.interval_s = interval_s
        self._rocml = rocml
        rocml.smi_initialize()
        self._smi = open_amdsmi(device) if smi is None else smi
        self._closed = False

    def fields(self) -> tuple[str, ...]:
        return PYRSMI_FIELDS + AMDSMI_FIELDS

    def sample(self) -> TelemetrySample:
        rocml, i = self._rocml, self.device.index
        smi = self._smi
        r = Readings(errors=() if isinstance(smi, Unavailable) else smi.errors)

        def pyrsmi(fn: str, scale: float = 1.0) -> float:
            return not_negative(getattr(rocml, fn)(i), f"pyrsmi {fn}") * scale

        r.read(names.HW_GPU_UTILIZATION, lambda: pyrsmi("smi_get_device_utilization", PERCENT))
        r.read(names.PRISM_GPU_MEMORY_BUSY, lambda: pyrsmi("smi_get_device_memory_busy", PERCENT))
        r.read(names.HW_GPU_MEMORY_USAGE, lambda: pyrsmi("smi_get_device_memory_used"))
        r.read(names.HW_GPU_MEMORY_LIMIT, lambda: pyrsmi("smi_get_device_memory_total"))
        r.read(names.HW_POWER, lambda: pyrsmi("smi_get_device_average_power"))
        r.read(names.PRISM_GPU_PCIE_THROUGHPUT, lambda: pyrsmi("smi_get_device_pcie_throughput"))
        if isinstance(smi, Unavailable):
            r.fail(AMDSMI_FIELDS, f"amdsmi unavailable: {smi.reason}")
        else:
            lib, h = smi.lib, smi.handle
            r.read(names.PRISM_GPU_CLOCK_SM, lambda: _clock_mhz(lib, h, lib.AmdSmiClkType.GFX) * MHZ)
            r.read(names.PRISM_GPU_CLOCK_MEMORY, lambda: _clock_mhz(lib, h, lib.AmdSmiClkType.MEM) * MHZ)
            r.read(
                names.HW_TEMPERATURE,
                lambda: lib.amdsmi_get_temp_metric(
                    h, lib.AmdSmiTemperatureType.HOTSPOT, lib.AmdSmiTemperatureMetric.CURRENT
                ),
            )
        return r.sample(self.device.id)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not isinstance(self._smi, Unavailable):
            self._smi.close()
        self._rocml.smi_shutdown()


def _clock_mhz(lib: Any, h: Any, clk: Any) -> float:
    info = lib.amdsmi_get_clock_info(h, clk)
    mhz = info["clk"]
    if not isinstance(mhz, int | float):  # amdsmi reports "N/A" strings for clocks a part does not have
        raise Unreadable(f"amdsmi_get_clock_info gave {mhz!r}")
    return float(mhz)


def rocm_telemetry(device: Device, interval_s: float = 1.0) -> RocmTelemetry | Unavailable:
    rocml = import_vendor("pyrsmi.rocml", VENDOR, HINT)
    if isinstance(rocml, Unavailable):
        return rocml
    return vendor_call(VENDOR, lambda: RocmTelemetry(rocml, device, interval_s))
