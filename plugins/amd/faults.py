"""AMD fault injectors: the performance level forced to LOW through amdsmi, and torch side-stream loads.

The equivalent of NVIDIA's clock lock is the PowerPlay performance level: `amdsmi_set_gpu_perf_level(handle,
AmdSmiDevPerfLevel.LOW)` keeps GFX and memory clocks at their minimum whatever the load (amdsmi docs,
"Performance levels and performance determinism"); the level read with `amdsmi_get_gpu_perf_level` before the
change is put back on stop (AUTO if it could not be read). It is all or nothing: any intensity forces LOW.
The CLI equivalent is `amd-smi set --perf-level LOW` / `AUTO`. Needs root, like the NVML clock lock.
"""

from __future__ import annotations

from typing import Any

from prism_core.faults import FaultInjector
from prism_core.faults.device_load import torch_has, torch_loads
from prism_core.faults.setting import SettingFault
from prism_core.models import Device, Unavailable
from prism_plugins.amd.probe import VENDOR, probe
from prism_plugins.amd.smi import AmdSmi, open_amdsmi

NO_PERMISSION = 10  # AMDSMI_STATUS_NO_PERM


class AmdPerfLevelLow(SettingFault):
    resource = "gpu.sm_clock"
    description = "forces the GPU's performance level to LOW (minimum clocks) with amdsmi; restored on stop"

    def __init__(self, device: Device, name: str = "amd.perf_level_low") -> None:
        super().__init__()
        self.name = name
        self.device = device
        self.previous: Any = None  # the level to restore
        self._smi: AmdSmi | None = None
        self._changed = False

    def _apply(self, intensity: float) -> None:
        smi = open_amdsmi(self.device)
        if isinstance(smi, Unavailable):
            raise RuntimeError(f"{self.name}: {smi.reason}")
        self._smi = smi
        lib = smi.lib
        levels = lib.AmdSmiDevPerfLevel
        try:
            self.previous = _level(levels, lib.amdsmi_get_gpu_perf_level(smi.handle))
        except smi.errors:
            self.previous = levels.AUTO  # the driver's default
        self._changed = True
        try:
            lib.amdsmi_set_gpu_perf_level(smi.handle, levels.LOW)
        except smi.errors as exc:
            code = getattr(exc, "get_error_code", lambda: None)()
            if code == NO_PERMISSION or "PERM" in str(exc).upper():
                self._changed = False  # refused: nothing was changed
                raise PermissionError(f"{self.name}: setting the performance level needs root (amdsmi: {exc})") from exc
            raise

    def _restore(self) -> None:
        smi = self._smi
        if smi is None:
            return
        if self._changed:
            smi.lib.amdsmi_set_gpu_perf_level(smi.handle, self.previous)  # raises: stays owed, stop can retry
            self._changed = False
        self._smi = None
        smi.close()


def _level(levels: Any, read: Any) -> Any:
    """amdsmi returns the level as a name like 'AMDSMI_DEV_PERF_LEVEL_AUTO' (or, in some versions, the enum)."""
    if isinstance(read, str):
        return levels[read.removeprefix("AMDSMI_DEV_PERF_LEVEL_")]
    return levels(read)


def amd_faults() -> list[FaultInjector]:
    """None without an AMD GPU; the perf-level fault where amdsmi imports; torch loads with a ROCm torch."""
    devices = probe()
    if isinstance(devices, Unavailable):
        return []
    faults: list[FaultInjector] = []
    smi = open_amdsmi(devices[0])
    if not isinstance(smi, Unavailable):
        smi.close()
        faults.append(AmdPerfLevelLow(devices[0]))
    if torch_has("cuda", "hip"):
        faults += torch_loads(VENDOR, "cuda")  # ROCm torch answers under torch.cuda; the first GPU it sees
    return faults
