"""Ascend telemetry: pyACL utilisation and npu-smi (DCMI) power, temperature and HBM.

`utilization_info, ret = acl.rt.get_device_utilization_rate(device_id)` gives Cube, Vector and AI CPU
utilisation in percent (CANN docs: meaningless while profiling is on; -1 where a unit does not exist, e.g. no
Vector units on Atlas training parts; memory utilisation is reserved and always -1, so it is not read). -1 goes
to `unreadable`. npu-smi gives power (W), temperature (C) and HBM used / total (MB, taken as MiB); without
npu-smi those fields are unreadable with the reason. Cube utilisation is reported as hw.gpu.utilization, so
diagnosis reads NPUs and GPUs alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prism_core.capture.readings import Readings, Unreadable, not_negative
from prism_core.export import names
from prism_core.models import Device, TelemetrySample, Unavailable
from prism_core.vendor import import_vendor, vendor_call
from prism_plugins.ascend import npu_smi
from prism_plugins.ascend.probe import HINT, VENDOR, AclError
from prism_plugins.ascend.runtime import ensure_init

PERCENT = 0.01
MIB = 2**20

ACL_FIELDS = {
    names.HW_GPU_UTILIZATION: ("cube_utilization", "cubeUtilization"),
    names.PRISM_NPU_VECTOR_UTILIZATION: ("vector_utilization", "vectorUtilization"),
    names.PRISM_NPU_AICPU_UTILIZATION: ("aicpu_utilization", "aicpuUtilization"),
}
SMI_FIELDS = (names.HW_POWER, names.HW_TEMPERATURE, names.HW_GPU_MEMORY_USAGE, names.HW_GPU_MEMORY_LIMIT)


class AscendTelemetry:
    def __init__(
        self, acl: Any, device: Device, interval_s: float = 1.0, read_smi: Callable[[], str] = npu_smi.run_info
    ) -> None:
        self.device = device
        self.interval_s = interval_s
        self._acl = acl
        self._read_smi = read_smi
        ensure_init(acl)

    def fields(self) -> tuple[str, ...]:
        return (*ACL_FIELDS, *SMI_FIELDS)

    def sample(self) -> TelemetrySample:
        r = Readings(errors=(AclError,))
        info: dict[str, Any] = {}
        try:
            info, ret = self._acl.rt.get_device_utilization_rate(self.device.index)
            if ret:
                raise AclError("aclrtGetDeviceUtilizationRate", ret)
        except AclError as exc:
            r.fail(tuple(ACL_FIELDS), str(exc))
        else:
            for name, keys in ACL_FIELDS.items():
                r.read(name, lambda keys=keys: _percent(info, keys))
        try:
            chips = npu_smi.parse_info(self._read_smi())
            if self.device.index >= len(chips):
                raise Unreadable(f"npu-smi lists {len(chips)} chips; none for {self.device.id}")
        except Unreadable as exc:
            r.fail(SMI_FIELDS, str(exc))
        else:
            chip = chips[self.device.index]
            r.read(names.HW_POWER, lambda: npu_smi.number(chip, "Power(W)"))
            r.read(names.HW_TEMPERATURE, lambda: npu_smi.number(chip, "Temp(C)"))
            r.read_all((names.HW_GPU_MEMORY_USAGE, names.HW_GPU_MEMORY_LIMIT), lambda: _hbm_bytes(chip))
        return r.sample(self.device.id)

    def close(self) -> None:
        return None  # nothing held: acl.init is left to its first caller (see runtime.py)


def _percent(info: dict[str, Any], keys: tuple[str, ...]) -> float:
    for key in keys:
        if key in info:
            return not_negative(float(info[key]), f"acl.rt.get_device_utilization_rate {key}") * PERCENT
    raise Unreadable(f"acl.rt.get_device_utilization_rate gave no {keys[0]} (keys: {sorted(info)})")


def _hbm_bytes(chip: npu_smi.Chip) -> tuple[float, float]:
    column = "HBM-Usage(MB)" if "HBM-Usage(MB)" in chip else "Memory-Usage(MB)"
    used, total = npu_smi.used_total(chip, column)
    return used * MIB, total * MIB


def ascend_telemetry(device: Device, interval_s: float = 1.0) -> AscendTelemetry | Unavailable:
    acl = import_vendor("acl", VENDOR, HINT)
    if isinstance(acl, Unavailable):
        return acl
    return vendor_call(VENDOR, lambda: AscendTelemetry(acl, device, interval_s))
