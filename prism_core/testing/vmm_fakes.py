"""Fakes of the HIP and pyACL VMM bindings, over the one device state machine of `FakeCudaDriver`.

HIP's hipMem* calls mirror CUDA's one to one and hip-python answers `(hipError_t, *values)` like cuda-python,
so `FakeHipDriver` renames the calls and translates the error enum. pyACL answers `(value, ret)` for queries
and a bare `ret` for actions (0 is success); its `map_mem` grants access itself, `unmap_mem` and
`release_mem_address` take only the address, and its shareable handle is a uint64 id, not a descriptor.
"""

from __future__ import annotations

import enum
import itertools
from types import SimpleNamespace
from typing import Any

from prism_core.testing.device_events import CUresult
from prism_core.testing.vmm import FakeCudaDriver


class hipError_t(enum.IntEnum):
    """The subset of HIP's error codes the backend meets (values as in hip_runtime_api.h)."""

    hipSuccess = 0
    hipErrorInvalidValue = 1
    hipErrorOutOfMemory = 2


_HIP_OF = {
    CUresult.CUDA_SUCCESS: hipError_t.hipSuccess,
    CUresult.CUDA_ERROR_OUT_OF_MEMORY: hipError_t.hipErrorOutOfMemory,
}


def _enum(name: str, **members: int) -> type[enum.IntEnum]:
    return enum.IntEnum(name, members)  # type: ignore[return-value]


class FakeHipDriver:
    """`from hip import hip` as far as the VMM backend uses it. `cuda` is the state machine underneath (its
    `fail` and `calls` work with the CUDA names: `fail = {"cuMemMap": 1}` fails the next hipMemMap)."""

    hipError_t = hipError_t
    hipMemAllocationType = _enum("hipMemAllocationType", hipMemAllocationTypePinned=1)
    hipMemLocationType = _enum("hipMemLocationType", hipMemLocationTypeDevice=1)
    hipMemAllocationHandleType = _enum("hipMemAllocationHandleType", hipMemHandleTypePosixFileDescriptor=1)
    hipMemAccessFlags = _enum("hipMemAccessFlags", hipMemAccessFlagsProtReadWrite=3)
    hipMemAllocationGranularity_flags = _enum("hipMemAllocationGranularity_flags", hipMemAllocationGranularityMinimum=0)
    hipMemAllocationProp = FakeCudaDriver.CUmemAllocationProp
    hipMemAccessDesc = FakeCudaDriver.CUmemAccessDesc

    def __init__(self, cuda: FakeCudaDriver | None = None) -> None:
        self.cuda = cuda or FakeCudaDriver()
        self.device = 0

    def hipSetDevice(self, index: int) -> tuple[Any, ...]:
        ok = 0 <= index < self.cuda.devices
        if ok:
            self.device = index
        return (hipError_t.hipSuccess if ok else hipError_t.hipErrorInvalidValue,)

    def hipGetDevice(self) -> tuple[Any, ...]:
        return hipError_t.hipSuccess, self.device

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("hipMem"):
            raise AttributeError(name)
        call = getattr(self.cuda, "cuMem" + name.removeprefix("hipMem"))

        def hip_call(*args: Any) -> tuple[Any, ...]:
            err, *values = call(*args)
            return (_HIP_OF.get(err, hipError_t.hipErrorInvalidValue), *values)

        return hip_call


ACL_ERROR_INVALID_PARAM = 100000
ACL_ERROR_BAD_ALLOC = 200000


class FakeAclVmm:
    """`import acl` as far as the VMM backend uses it (`acl.init`, `acl.rt.*`), over `FakeCudaDriver`'s
    state machine with 2 MiB granularity. `cuda.fail` fails a step by its CUDA name."""

    def __init__(self, cuda: FakeCudaDriver | None = None) -> None:
        self.cuda = c = cuda or FakeCudaDriver()
        self.props: list[dict[str, Any]] = []
        self.exported: dict[int, int] = {}  # shareable id -> handle
        self.current: int | None = None
        self._ids = itertools.count(0x5EED_0000)
        self.rt = SimpleNamespace(
            set_device=self._set_device,
            reserve_mem_address=lambda size, align, expect, flags: self._value(
                c.cuMemAddressReserve(size, align, expect, flags)
            ),
            release_mem_address=lambda ptr: self._ret(c.cuMemAddressFree(ptr, c.reserved.get(ptr, -1))),
            malloc_physical=self._malloc_physical,
            free_physical=lambda handle: self._ret(c.cuMemRelease(handle)),
            map_mem=self._map_mem,
            unmap_mem=lambda ptr: self._ret(c.cuMemUnmap(ptr, c.mapped.get(ptr, (0, 0))[0])),
            mem_export_to_shareable_handle=self._export,
            mem_import_from_shareable_handle=self._import,
        )

    def init(self) -> int:
        return 0

    @staticmethod
    def _code(err: CUresult) -> int:
        if err == CUresult.CUDA_SUCCESS:
            return 0
        return ACL_ERROR_BAD_ALLOC if err == CUresult.CUDA_ERROR_OUT_OF_MEMORY else ACL_ERROR_INVALID_PARAM

    def _ret(self, result: tuple[Any, ...]) -> int:
        return self._code(result[0])

    def _value(self, result: tuple[Any, ...]) -> tuple[Any, int]:
        return result[1], self._code(result[0])

    def _set_device(self, index: int) -> int:
        if not 0 <= index < self.cuda.devices:
            return ACL_ERROR_INVALID_PARAM
        self.current = index
        return 0

    def _malloc_physical(self, size: int, prop: dict[str, Any], flags: int) -> tuple[Any, int]:
        if self.current is None:
            return None, ACL_ERROR_INVALID_PARAM  # ACL needs a device set on the thread
        self.props.append(prop)
        return self._value(self.cuda.cuMemCreate(size, FakeCudaDriver.CUmemAllocationProp(), flags))

    def _map_mem(self, ptr: int, size: int, offset: int, handle: int, flags: int) -> int:
        ret = self._ret(self.cuda.cuMemMap(ptr, size, offset, handle, flags))
        if ret == 0:
            self.cuda.accessible.add(ptr)  # ACL maps with access for the current device
        return ret

    def _export(self, handle: int, kind: int, flags: int) -> tuple[int, int]:
        if int(handle) not in self.cuda.allocations:
            return 0, ACL_ERROR_INVALID_PARAM
        shareable = next(self._ids)
        self.exported[shareable] = int(handle)
        return shareable, 0

    def _import(self, shareable: int, device: int) -> tuple[Any, int]:
        source = self.exported.get(shareable)
        if source is None:
            return None, ACL_ERROR_INVALID_PARAM
        created = self.cuda.cuMemCreate(self.cuda.allocations[source], FakeCudaDriver.CUmemAllocationProp(), 0)
        return self._value(created)
