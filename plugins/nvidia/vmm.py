"""CUDA virtual memory for the elastic KV pool, through cuda-python's driver API.

Runs in the device's primary context, the one PyTorch uses, so pool tensors and the engine's kernels see the
same address space. Physical pages are pinned device allocations requested with POSIX file-descriptor
handles so they can be exported to another process. Reuse of pre-created handles (the pool that spares
cuMemCreate on a map) lives in prism_core.memory.HandlePool, shared by every backend.
"""

from __future__ import annotations

from typing import Any

from prism_core.memory import VmmError
from prism_core.memory.driver import DriverVmm
from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor, vendor_call

VENDOR = "nvidia"
HINT = "install the extra: pip install 'prism-xpu[nvidia]'"


class CudaVmm(DriverVmm):
    """VmmBackend over cuMemAddressReserve / cuMemCreate / cuMemMap / cuMemSetAccess and friends."""

    def __init__(self, device: Device, driver: Any) -> None:
        self._d = d = driver
        self._call("cuInit", d.cuInit(0))
        (dev,) = self._call("cuDeviceGet", d.cuDeviceGet(device.index))
        (self._ctx,) = self._call("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(dev))
        self._dev = dev
        self._call("cuCtxSetCurrent", d.cuCtxSetCurrent(self._ctx))
        prop = d.CUmemAllocationProp()
        prop.type = d.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
        prop.location.type = d.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        prop.location.id = device.index
        prop.requestedHandleTypes = d.CUmemAllocationHandleType.CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
        self._prop = prop
        access = d.CUmemAccessDesc()
        access.location.type = d.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        access.location.id = device.index
        access.flags = d.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE
        self._access = [access]
        flag = d.CUmemAllocationGranularity_flags.CU_MEM_ALLOC_GRANULARITY_MINIMUM
        (gran,) = self._call("cuMemGetAllocationGranularity", d.cuMemGetAllocationGranularity(prop, flag))
        self._fd_kind = d.CUmemAllocationHandleType.CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
        super().__init__(device, int(gran))

    def _call(self, name: str, result: Any) -> tuple[Any, ...]:
        """cuda-python returns (CUresult, *values); anything but success is a VmmError naming the call."""
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self._d.CUresult.CUDA_SUCCESS:
            where = getattr(getattr(self, "device", None), "id", "the device")
            raise VmmError(f"{name} failed on {where}: {getattr(err, 'name', err)}")
        return tuple(values)

    def _ptr(self, addr: int) -> Any:
        return self._d.CUdeviceptr(addr)

    def _reserve(self, size: int) -> int:
        (ptr,) = self._call("cuMemAddressReserve", self._d.cuMemAddressReserve(size, self.granularity, 0, 0))
        return int(ptr)

    def _free(self, addr: int, size: int) -> None:
        self._call("cuMemAddressFree", self._d.cuMemAddressFree(self._ptr(addr), size))

    def _create(self, size: int) -> Any:
        return self._call("cuMemCreate", self._d.cuMemCreate(size, self._prop, 0))[0]

    def _release(self, obj: Any) -> None:
        self._call("cuMemRelease", self._d.cuMemRelease(obj))

    def _map(self, addr: int, size: int, obj: Any) -> None:
        d = self._d
        self._call("cuMemMap", d.cuMemMap(self._ptr(addr), size, 0, obj, 0))
        try:
            self._call("cuMemSetAccess", d.cuMemSetAccess(self._ptr(addr), size, self._access, 1))
        except VmmError:
            d.cuMemUnmap(self._ptr(addr), size)
            raise

    def _unmap(self, addr: int, size: int) -> None:
        self._call("cuMemUnmap", self._d.cuMemUnmap(self._ptr(addr), size))

    def _export(self, obj: Any) -> int:
        fd = self._call("cuMemExportToShareableHandle", self._d.cuMemExportToShareableHandle(obj, self._fd_kind, 0))
        return int(fd[0])

    def _import(self, shareable: int) -> Any:
        d = self._d
        return self._call("cuMemImportFromShareableHandle", d.cuMemImportFromShareableHandle(shareable, self._fd_kind))[
            0
        ]

    def _shutdown(self) -> None:
        self._d.cuDevicePrimaryCtxRelease(self._dev)


def cuda_vmm(device: Device) -> CudaVmm | Unavailable:
    """The backend for an nvidia device, or why there is none (no cuda-python, no driver)."""
    driver = import_vendor("cuda.bindings.driver", VENDOR, HINT)
    if isinstance(driver, Unavailable):
        return driver
    return vendor_call(VENDOR, lambda: CudaVmm(device, driver))
