"""CUDA virtual memory for the elastic KV pool, through cuda-python's driver API.

Runs in the device's primary context, the one PyTorch uses, so pool tensors and the engine's kernels see the
same address space. Physical pages are pinned device allocations requested with POSIX file-descriptor
handles so they can be exported to another process. Reuse of pre-created handles (the pool that spares
cuMemCreate on a map) lives in prism_core.memory.HandlePool, shared by every backend.
"""

from __future__ import annotations

import threading
from typing import Any

from prism_core.memory import RangeBook, VmmError
from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor, vendor_call

VENDOR = "nvidia"
HINT = "install the extra: pip install 'prism-xpu[nvidia]'"


class CudaVmm:
    """VmmBackend over cuMemAddressReserve / cuMemCreate / cuMemMap / cuMemSetAccess and friends."""

    host_accessible = False

    def __init__(self, device: Device, driver: Any) -> None:
        self.device = device
        self._d = driver
        d = driver
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
        self.granularity = int(gran)
        self._book = RangeBook(self.granularity)
        self._objects: dict[int, Any] = {}  # int handle -> the driver's handle object
        self._lock = threading.Lock()
        self._closed = False

    def _call(self, name: str, result: Any) -> tuple[Any, ...]:
        """cuda-python returns (CUresult, *values); anything but success is a VmmError naming the call."""
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self._d.CUresult.CUDA_SUCCESS:
            raise VmmError(f"{name} failed on {self.device.id}: {getattr(err, 'name', err)}")
        return tuple(values)

    def _ptr(self, addr: int) -> Any:
        return self._d.CUdeviceptr(addr)

    def reserve(self, size: int) -> int:
        with self._lock:
            self._book.aligned("size", size)
            (ptr,) = self._call("cuMemAddressReserve", self._d.cuMemAddressReserve(size, self.granularity, 0, 0))
            addr = int(ptr)
            self._book.add_reservation(addr, size)
            return addr

    def free(self, addr: int, size: int) -> None:
        with self._lock:
            self._book.check_free(addr, size)
            self._call("cuMemAddressFree", self._d.cuMemAddressFree(self._ptr(addr), size))
            self._book.remove_reservation(addr)

    def create(self, size: int) -> int:
        with self._lock:
            self._book.check_create(size)
            (obj,) = self._call("cuMemCreate", self._d.cuMemCreate(size, self._prop, 0))
            return self._adopt(obj, size)

    def _adopt(self, obj: Any, size: int) -> int:
        handle = int(obj)
        self._objects[handle] = obj
        self._book.handles[handle] = size
        return handle

    def release(self, handle: int) -> None:
        with self._lock:
            self._book.size_of(handle)
            self._call("cuMemRelease", self._d.cuMemRelease(self._objects[handle]))
            del self._book.handles[handle], self._objects[handle]

    def map(self, addr: int, size: int, handle: int) -> None:
        with self._lock:
            self._book.check_map(addr, size, handle)
            d = self._d
            self._call("cuMemMap", d.cuMemMap(self._ptr(addr), size, 0, self._objects[handle], 0))
            try:
                self._call("cuMemSetAccess", d.cuMemSetAccess(self._ptr(addr), size, self._access, 1))
            except VmmError:
                d.cuMemUnmap(self._ptr(addr), size)
                raise
            self._book.add_mapping(addr, size, handle)

    def unmap(self, addr: int, size: int) -> None:
        with self._lock:
            starts = self._book.covered(addr, size)
            self._call("cuMemUnmap", self._d.cuMemUnmap(self._ptr(addr), size))
            for start in starts:
                self._book.remove_mapping(start)

    def export(self, handle: int) -> int:
        with self._lock:
            self._book.size_of(handle)
            kind = self._d.CUmemAllocationHandleType.CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
            (fd,) = self._call(
                "cuMemExportToShareableHandle", self._d.cuMemExportToShareableHandle(self._objects[handle], kind, 0)
            )
            return int(fd)

    def import_(self, shareable: int) -> int:
        with self._lock:
            kind = self._d.CUmemAllocationHandleType.CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
            (obj,) = self._call(
                "cuMemImportFromShareableHandle", self._d.cuMemImportFromShareableHandle(shareable, kind)
            )
            # The driver does not say an imported allocation's size; pages here are one granule or the pool's
            # page size, which the importer passes to map and which map checks against this.
            return self._adopt(obj, self.granularity)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            d, book = self._d, self._book
            for addr, (size, _) in list(book.mappings.items()):
                d.cuMemUnmap(self._ptr(addr), size)
                book.remove_mapping(addr)
            for handle in list(book.handles):
                d.cuMemRelease(self._objects.pop(handle))
                del book.handles[handle]
            for addr, size in list(book.reservations.items()):
                d.cuMemAddressFree(self._ptr(addr), size)
                book.remove_reservation(addr)
            d.cuDevicePrimaryCtxRelease(self._dev)


def cuda_vmm(device: Device) -> CudaVmm | Unavailable:
    """The backend for an nvidia device, or why there is none (no cuda-python, no driver)."""
    driver = import_vendor("cuda.bindings.driver", VENDOR, HINT)
    if isinstance(driver, Unavailable):
        return driver
    return vendor_call(VENDOR, lambda: CudaVmm(device, driver))
