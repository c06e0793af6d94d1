"""ACL virtual memory for the elastic KV pool, through pyACL (`import acl`).

The documented flow (CANN runtime API, "virtual memory management"): `acl.rt.reserve_mem_address(size, 0, 0, 0)`
-> `(va, ret)`; `acl.rt.malloc_physical(size, prop, 0)` -> `(handle, ret)` with `prop` a dict (handleType
ACL_MEM_HANDLE_TYPE_NONE, allocationType ACL_MEM_ALLOCATION_TYPE_PINNED, memAttr ACL_HBM_MEM_HUGE for 2 MiB
pages, location `{"id": device, "type": ACL_MEM_LOCATION_TYPE_DEVICE}`); `acl.rt.map_mem(va, size, 0, handle,
0)` -> `ret` (access is granted by the map); `acl.rt.unmap_mem(va)`; `acl.rt.free_physical(handle)`;
`acl.rt.release_mem_address(va)`. pyACL returns `(value, ret)` (the reverse of cuda-python), 0 is success.

Sharing: `acl.rt.mem_export_to_shareable_handle(handle, ACL_MEM_HANDLE_TYPE_NONE, 0)` -> `(shareable, ret)`
gives a uint64 id, not a file descriptor, and `mem_import_from_shareable_handle(shareable, device)` takes it in
another process (which the exporter may have to whitelist with `aclrtMemSetPidToShareableHandle`, not
wrapped here). So `export_is_fd` is False: the pool does not hand these pages to another model through a Unix
socket; reclaim on Ascend frees and re-creates pages. The granularity is 2 MiB (the only one CANN 8.0
documents for HBM huge pages). Tested against `prism_core.testing.FakeAclVmm`; not yet run on an NPU.
"""

from __future__ import annotations

from typing import Any

from prism_core.memory import VmmError
from prism_core.memory.driver import DriverVmm
from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor, vendor_call
from prism_plugins.ascend.probe import HINT, VENDOR
from prism_plugins.ascend.runtime import ensure_init

GRANULARITY = 2 * 2**20
ACL_MEM_HANDLE_TYPE_NONE = 0
ACL_MEM_ALLOCATION_TYPE_PINNED = 0
ACL_HBM_MEM_HUGE = 4
ACL_MEM_LOCATION_TYPE_DEVICE = 1


class AclVmm(DriverVmm):
    """VmmBackend over pyACL's reserve_mem_address / malloc_physical / map_mem on one Ascend NPU."""

    export_is_fd = False

    def __init__(self, device: Device, acl: Any) -> None:
        self._rt = acl.rt
        ensure_init(acl)
        self._ret("set_device", acl.rt.set_device(device.index))
        self._prop = {
            "handleType": ACL_MEM_HANDLE_TYPE_NONE,
            "allocationType": ACL_MEM_ALLOCATION_TYPE_PINNED,
            "memAttr": ACL_HBM_MEM_HUGE,
            "location": {"id": device.index, "type": ACL_MEM_LOCATION_TYPE_DEVICE},
            "reserve": 0,
        }
        super().__init__(device, GRANULARITY)

    def _ret(self, name: str, ret: int) -> None:
        if ret != 0:
            where = getattr(getattr(self, "device", None), "id", "the device")
            raise VmmError(f"acl.rt.{name} failed on {where}: ret {ret}")

    def _value(self, name: str, result: tuple[Any, int]) -> Any:
        got, ret = result
        self._ret(name, ret)
        return got

    def _reserve(self, size: int) -> int:
        return int(self._value("reserve_mem_address", self._rt.reserve_mem_address(size, 0, 0, 0)))

    def _free(self, addr: int, size: int) -> None:
        self._ret("release_mem_address", self._rt.release_mem_address(addr))

    def _create(self, size: int) -> Any:
        return self._value("malloc_physical", self._rt.malloc_physical(size, self._prop, 0))

    def _release(self, obj: Any) -> None:
        self._ret("free_physical", self._rt.free_physical(obj))

    def _map(self, addr: int, size: int, obj: Any) -> None:
        self._ret("map_mem", self._rt.map_mem(addr, size, 0, obj, 0))

    def _unmap(self, addr: int, size: int) -> None:
        # ACL unmaps one mapping by its start address; a range may cover several.
        for start in sorted(a for a in self._book.mappings if addr <= a < addr + size):
            self._ret("unmap_mem", self._rt.unmap_mem(start))

    def _export(self, obj: Any) -> int:
        shareable = self._rt.mem_export_to_shareable_handle(obj, ACL_MEM_HANDLE_TYPE_NONE, 0)
        return int(self._value("mem_export_to_shareable_handle", shareable))

    def _import(self, shareable: int) -> Any:
        got = self._rt.mem_import_from_shareable_handle(shareable, self.device.index)
        return self._value("mem_import_from_shareable_handle", got)


def acl_vmm(device: Device) -> AclVmm | Unavailable:
    """The backend for an ascend device, or why there is none (no pyACL, no driver)."""
    acl = import_vendor("acl", VENDOR, HINT)
    if isinstance(acl, Unavailable):
        return acl
    return vendor_call(VENDOR, lambda: AclVmm(device, acl))
