"""HIP virtual memory for the elastic KV pool, through hip-python (`from hip import hip`).

HIP's VMM API mirrors CUDA's one to one (hipMemAddressReserve, hipMemCreate, hipMemMap, hipMemSetAccess,
hipMemUnmap, hipMemRelease, hipMemAddressFree, hipMemExportToShareableHandle / hipMemImportFromShareableHandle
with POSIX file descriptors; ROCm documents it as beta and Linux-only), and hip-python answers
`(hipError_t, *values)` like cuda-python. HIP has no explicit contexts: the device is made current once here,
as the runtime PyTorch's ROCm build uses does per thread. Implemented from the HIP documentation
(rocm.docs.amd.com, "Virtual memory management"), tested against `prism_core.testing.FakeHipDriver`; not yet
run on an AMD GPU.
"""

from __future__ import annotations

from typing import Any

from prism_core.memory import VmmError
from prism_core.memory.driver import DriverVmm
from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor, vendor_call
from prism_plugins.amd.probe import VENDOR
from prism_plugins.amd.timing import HIP_HINT


class HipVmm(DriverVmm):
    """VmmBackend over hipMem* on one AMD GPU."""

    def __init__(self, device: Device, hip: Any) -> None:
        self._hip = h = hip
        self._call("hipSetDevice", h.hipSetDevice(device.index))
        prop = h.hipMemAllocationProp()
        prop.type = h.hipMemAllocationType.hipMemAllocationTypePinned
        prop.location.type = h.hipMemLocationType.hipMemLocationTypeDevice
        prop.location.id = device.index
        prop.requestedHandleTypes = h.hipMemAllocationHandleType.hipMemHandleTypePosixFileDescriptor
        self._prop = prop
        access = h.hipMemAccessDesc()
        access.location.type = h.hipMemLocationType.hipMemLocationTypeDevice
        access.location.id = device.index
        access.flags = h.hipMemAccessFlags.hipMemAccessFlagsProtReadWrite
        self._access = [access]
        self._fd_kind = h.hipMemAllocationHandleType.hipMemHandleTypePosixFileDescriptor
        flag = h.hipMemAllocationGranularity_flags.hipMemAllocationGranularityMinimum
        (gran,) = self._call("hipMemGetAllocationGranularity", h.hipMemGetAllocationGranularity(prop, flag))
        super().__init__(device, int(gran))

    def _call(self, name: str, result: Any) -> tuple[Any, ...]:
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self._hip.hipError_t.hipSuccess:
            where = getattr(getattr(self, "device", None), "id", "the device")
            raise VmmError(f"{name} failed on {where}: {getattr(err, 'name', err)}")
        return tuple(values)

    def _reserve(self, size: int) -> int:
        return int(self._call("hipMemAddressReserve", self._hip.hipMemAddressReserve(size, self.granularity, 0, 0))[0])

    def _free(self, addr: int, size: int) -> None:
        self._call("hipMemAddressFree", self._hip.hipMemAddressFree(addr, size))

    def _create(self, size: int) -> Any:
        return self._call("hipMemCreate", self._hip.hipMemCreate(size, self._prop, 0))[0]

    def _release(self, obj: Any) -> None:
        self._call("hipMemRelease", self._hip.hipMemRelease(obj))

    def _map(self, addr: int, size: int, obj: Any) -> None:
        h = self._hip
        self._call("hipMemMap", h.hipMemMap(addr, size, 0, obj, 0))
        try:
            self._call("hipMemSetAccess", h.hipMemSetAccess(addr, size, self._access, 1))
        except VmmError:
            h.hipMemUnmap(addr, size)
            raise

    def _unmap(self, addr: int, size: int) -> None:
        self._call("hipMemUnmap", self._hip.hipMemUnmap(addr, size))

    def _export(self, obj: Any) -> int:
        h = self._hip
        return int(
            self._call("hipMemExportToShareableHandle", h.hipMemExportToShareableHandle(obj, self._fd_kind, 0))[0]
        )

    def _import(self, shareable: int) -> Any:
        h = self._hip
        return self._call(
            "hipMemImportFromShareableHandle", h.hipMemImportFromShareableHandle(shareable, self._fd_kind)
        )[0]


def hip_vmm(device: Device) -> HipVmm | Unavailable:
    """The backend for an amd device, or why there is none (no hip-python, no ROCm runtime)."""
    hip = import_vendor("hip.hip", VENDOR, HIP_HINT)
    if isinstance(hip, Unavailable):
        return hip
    return vendor_call(VENDOR, lambda: HipVmm(device, hip))
