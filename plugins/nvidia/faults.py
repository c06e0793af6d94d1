"""NVIDIA fault injectors: SM clock lock through NVML, and torch side-stream loads (GEMM, D2D and H2D copies).

Offered only where they can run (the hook returns [] without an NVIDIA GPU, and the torch loads only when torch
has CUDA), so every fault that `prism faults list` shows can start.
"""

from __future__ import annotations

from typing import Any

from prism_core.faults import FaultInjector
from prism_core.faults.device_load import torch_has, torch_loads
from prism_core.faults.setting import SettingFault
from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor
from prism_plugins.nvidia.probe import HINT, VENDOR, probe
from prism_plugins.nvidia.telemetry import device_handle


def supported_sm_clocks(nvml: Any, h: Any) -> list[int]:
    """Every SM clock (MHz) the GPU supports, over all its memory clocks, ascending."""
    clocks: set[int] = set()
    for mem in nvml.nvmlDeviceGetSupportedMemoryClocks(h):
        clocks.update(int(c) for c in nvml.nvmlDeviceGetSupportedGraphicsClocks(h, mem))
    if not clocks:
        raise RuntimeError("NVML lists no supported graphics clocks for this GPU")
    return sorted(clocks)


def clock_for(clocks: list[int], intensity: float) -> int:
    """The supported clock nearest to `intensity` of the way down from the highest (1.0: the lowest)."""
    target = clocks[-1] - intensity * (clocks[-1] - clocks[0])
    return min(clocks, key=lambda c: (abs(c - target), c))


class NvmlClockLock(SettingFault):
    """Locks the SM clock with nvmlDeviceSetGpuLockedClocks; nvmlDeviceResetGpuLockedClocks restores.

    Needs root (NVML answers NVMLError_NoPermission otherwise): `start` then raises PermissionError and nothing
    was changed. `locked_mhz` is the clock asked for (ground truth for detection tests).
    """

    resource = "gpu.sm_clock"
    description = "locks the GPU's SM clock toward its lowest supported clock (1.0: the lowest) with NVML"

    def __init__(self, nvml: Any, device: Device, name: str = "nvidia.clock_lock") -> None:
        super().__init__()
        self.name = name
        self.device = device
        self.locked_mhz: int | None = None  # the clock asked for: ground truth for detection tests
        self._nvml = nvml
        self._h: Any = None
        self._opened = False  # nvmlInit succeeded: nvmlShutdown owed
        self._changed = False  # a lock may be in place: reset owed

    def _apply(self, intensity: float) -> None:
        nvml = self._nvml
        nvml.nvmlInit()
        self._opened = True
        self._h = device_handle(nvml, self.device)
        mhz = clock_for(supported_sm_clocks(nvml, self._h), intensity)
        self._changed = True
        try:
            nvml.nvmlDeviceSetGpuLockedClocks(self._h, mhz, mhz)
        except nvml.NVMLError_NoPermission as exc:
            self._changed = False  # refused: nothing was changed
            raise PermissionError(
                f"{self.name}: locking GPU clocks needs root (NVML: {exc}); run as root or pick another fault"
            ) from exc
        self.locked_mhz = mhz

    def _restore(self) -> None:
        nvml = self._nvml
        if self._changed:
            nvml.nvmlDeviceResetGpuLockedClocks(self._h)  # raises: stays owed, stop can be retried
            self._changed = False
            self.locked_mhz = None
        if self._opened:
            self._opened = False
            self._h = None
            nvml.nvmlShutdown()


def nvidia_faults() -> list[FaultInjector]:
    """The faults this host can run on its first NVIDIA GPU: none without one; the torch loads only with CUDA torch."""
    devices = probe()
    if isinstance(devices, Unavailable):
        return []
    nvml = import_vendor("pynvml", VENDOR, HINT)
    faults: list[FaultInjector] = [] if isinstance(nvml, Unavailable) else [NvmlClockLock(nvml, devices[0])]
    if torch_has("cuda", "cuda"):
        faults += torch_loads(VENDOR, "cuda")  # the first GPU torch sees
    return faults
