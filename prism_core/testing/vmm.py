"""`VmmConformance`: the suite every VMM backend runs, ours and third-party alike.

    from prism_core.testing import VmmConformance

    class TestMyVmm(VmmConformance):
        @pytest.fixture
        def vmm_backend(self):
            return MyVmm(device)   # a fresh backend; the suite closes it

Backends that are `host_accessible` also get data checks, a cross-process export/import through a Unix
socket, and proof that an unmapped page faults; the child processes build their backend through the plugin
host (`prism_vmm_backend` for the same device id), so the plugin must be registered by entry point.
"""

from __future__ import annotations

import collections
import ctypes
import enum
import multiprocessing
import os
import signal
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from prism_core.errors import UsageError
from prism_core.memory import VmmBackend, map_all
from prism_core.memory.share import recv_handles, send_handles
from prism_core.testing.device_events import CUresult

PAGES = 4


def _child_backend(device_id: str) -> VmmBackend:
    from prism_core.plugins import host

    h = host()
    backend = h.vmm_backend(h.device(device_id))
    if backend is None:
        raise SystemExit(f"no VMM backend for {device_id} in the child process")
    return backend


def _child_import_and_write(device_id: str, sock: socket.socket) -> None:
    """Import the parent's page, check its pattern, overwrite it with the reply pattern."""
    backend = _child_backend(device_id)
    _, (fd,) = recv_handles(sock, 1)
    handle = backend.import_(fd)
    size = backend.granularity
    addr = backend.reserve(size)
    backend.map(addr, size, handle)
    seen = ctypes.string_at(addr, 4)
    ctypes.memset(addr, 0x5A, size)
    backend.unmap(addr, size)
    backend.close()
    sock.sendall(seen)


def _child_touch_unmapped(device_id: str) -> None:
    """Map, write, unmap, then read the unmapped page: must die of SIGSEGV, never return."""
    backend = _child_backend(device_id)
    size = backend.granularity
    addr = backend.reserve(size)
    handle = backend.create(size)
    backend.map(addr, size, handle)
    ctypes.memset(addr, 0x11, size)
    backend.unmap(addr, size)
    ctypes.string_at(addr, 1)  # the fault
    raise SystemExit(0)


class VmmConformance:
    """Provide fixture `vmm_backend`: a fresh VmmBackend for one device."""

    @pytest.fixture
    def vmm(self, vmm_backend: VmmBackend) -> Iterator[VmmBackend]:
        yield vmm_backend
        vmm_backend.close()

    def test_is_a_vmm_backend(self, vmm: VmmBackend) -> None:
        assert isinstance(vmm, VmmBackend)
        g = vmm.granularity
        assert g > 0 and g & (g - 1) == 0, f"granularity {g} must be a power of two"
        assert vmm.device.id

    def test_reserve_is_aligned_and_freed(self, vmm: VmmBackend) -> None:
        size = PAGES * vmm.granularity
        addr = vmm.reserve(size)
        assert addr and addr % vmm.granularity == 0
        other = vmm.reserve(size)
        assert other + size <= addr or addr + size <= other, "two reservations overlap"
        vmm.free(addr, size)
        vmm.free(other, size)

    def test_map_unmap_release_cycle(self, vmm: VmmBackend) -> None:
        g = vmm.granularity
        addr = vmm.reserve(PAGES * g)
        handles = [vmm.create(g) for _ in range(PAGES)]
        assert len(set(handles)) == PAGES, "handles must be distinct"
        map_all(vmm, [(addr + i * g, g, h) for i, h in enumerate(handles)])
        if vmm.host_accessible:
            for i in range(PAGES):
                ctypes.memset(addr + i * g, i + 1, g)
            assert ctypes.string_at(addr + 2 * g, 3) == b"\x03\x03\x03"
        vmm.unmap(addr, 2 * g)  # two whole mappings at once
        vmm.map(addr, g, handles[1])  # a page keeps its data and can live at another address
        if vmm.host_accessible:
            assert ctypes.string_at(addr, 2) == b"\x02\x02"
        vmm.unmap(addr, g)
        vmm.unmap(addr + 2 * g, 2 * g)
        for h in handles:
            vmm.release(h)
        vmm.free(addr, PAGES * g)

    def test_malformed_calls_are_usage_errors(self, vmm: VmmBackend) -> None:
        g = vmm.granularity
        addr = vmm.reserve(PAGES * g)
        h = vmm.create(g)
        with pytest.raises(UsageError):
            vmm.reserve(g + 1)
        with pytest.raises(UsageError):
            vmm.create(g // 2 or 1)
        with pytest.raises(UsageError, match="outside"):
            vmm.map(addr + PAGES * g, g, h)  # just past the reservation
        with pytest.raises(UsageError):
            vmm.map(addr + 1, g, h)
        with pytest.raises(UsageError):
            vmm.map(addr, g, h + 10_000)
        vmm.map(addr, g, h)
        with pytest.raises(UsageError, match="overlap"):
            vmm.map(addr, g, vmm.create(g))
        with pytest.raises(UsageError):
            vmm.unmap(addr + g, g)  # nothing mapped there
        with pytest.raises(UsageError, match="unmap"):
            vmm.free(addr, PAGES * g)
        vmm.unmap(addr, g)
        vmm.release(h)
        with pytest.raises(UsageError):
            vmm.release(h)
        vmm.free(addr, PAGES * g)

    def test_map_all_is_all_or_nothing(self, vmm: VmmBackend) -> None:
        g = vmm.granularity
        addr = vmm.reserve(PAGES * g)
        good = [vmm.create(g) for _ in range(PAGES - 1)]
        bad = vmm.create(g)
        vmm.release(bad)  # a handle that fails the last map
        pages = [(addr + i * g, g, h) for i, h in enumerate([*good, bad])]
        with pytest.raises(UsageError):
            map_all(vmm, pages)
        # Had any page stayed mapped, mapping there again would be an overlap error.
        map_all(vmm, pages[:-1])
        vmm.unmap(addr, (PAGES - 1) * g)
        vmm.free(addr, PAGES * g)

    def test_export_gives_a_new_descriptor(self, vmm: VmmBackend) -> None:
        h = vmm.create(vmm.granularity)
        shareable = vmm.export(h)
        assert shareable != h
        local = vmm.import_(shareable)
        addr = vmm.reserve(vmm.granularity)
        vmm.map(addr, vmm.granularity, local)
        vmm.unmap(addr, vmm.granularity)
        vmm.release(local)
        vmm.release(h)

    def test_close_is_idempotent(self, vmm: VmmBackend) -> None:
        addr = vmm.reserve(vmm.granularity)
        vmm.map(addr, vmm.granularity, vmm.create(vmm.granularity))
        vmm.close()
        vmm.close()

    def test_handle_crosses_processes_over_a_unix_socket(self, vmm: VmmBackend) -> None:
        if not vmm.host_accessible:
            pytest.skip("data checks need a host-accessible backend")
        g = vmm.granularity
        h = vmm.create(g)
        addr = vmm.reserve(g)
        vmm.map(addr, g, h)
        ctypes.memset(addr, 0xA7, g)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=_child_import_and_write, args=(vmm.device.id, theirs))
        child.start()
        theirs.close()
        with ours:
            shareable = vmm.export(h)
            send_handles(ours, [shareable])
            os.close(shareable)  # the child got its own copy
            ours.settimeout(60)
            seen = ours.recv(16)
        child.join(60)
        assert child.exitcode == 0
        assert seen == b"\xa7" * 4, "the child must see the parent's bytes"
        assert ctypes.string_at(addr, 4) == b"\x5a" * 4, "the parent must see the child's bytes"

    def test_unmapped_page_faults(self, vmm: VmmBackend) -> None:
        if not vmm.host_accessible:
            pytest.skip("a host read of device memory is not how device backends fault")
        child = multiprocessing.get_context("spawn").Process(target=_child_touch_unmapped, args=(vmm.device.id,))
        child.start()
        child.join(60)
        assert child.exitcode == -signal.SIGSEGV


# Fakes at the binding boundary --------------------------------------------------------------------------------


Ret = tuple[Any, ...]  # (CUresult, *values), as cuda-python answers


class _Location:
    def __init__(self) -> None:
        self.type: int = 0
        self.id: int = 0


class _Prop:
    def __init__(self) -> None:
        self.type: int = 0
        self.location = _Location()
        self.requestedHandleTypes: int = 0


class _Access:
    def __init__(self) -> None:
        self.location = _Location()
        self.flags: int = 0


class _Handle(int):
    """Shaped like CUmemGenericAllocationHandle: an object that int() turns into the handle value."""


class FakeCudaDriver:
    """`cuda.bindings.driver` as far as the VMM backend uses it: a state machine over one GPU with
    `memory` bytes that answers `(CUresult, *values)` like cuda-python, checks alignment and state like the
    driver, and fails a chosen call with `fail = {"cuMemMap": n}` (its n-th call from now). `calls` counts
    every call, so tests can see that a pooled handle spared a cuMemCreate."""

    CUresult = CUresult
    CUmemAllocationType = enum.IntEnum("CUmemAllocationType", {"CU_MEM_ALLOCATION_TYPE_PINNED": 1})
    CUmemLocationType = enum.IntEnum("CUmemLocationType", {"CU_MEM_LOCATION_TYPE_DEVICE": 1})
    CUmemAllocationHandleType = enum.IntEnum(
        "CUmemAllocationHandleType", {"CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR": 1}
    )
    CUmemAccess_flags = enum.IntEnum("CUmemAccess_flags", {"CU_MEM_ACCESS_FLAGS_PROT_READWRITE": 3})
    CUmemAllocationGranularity_flags = enum.IntEnum(
        "CUmemAllocationGranularity_flags", {"CU_MEM_ALLOC_GRANULARITY_MINIMUM": 0}
    )
    CUmemAllocationProp = _Prop
    CUmemAccessDesc = _Access
    CUdeviceptr = int

    def __init__(self, memory: int = 1 << 30, granularity: int = 2 << 20, devices: int = 1) -> None:
        self.memory = memory
        self.gran = granularity
        self.devices = devices
        self.fail: dict[str, int] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self.reserved: dict[int, int] = {}
        self.allocations: dict[int, int] = {}  # handle -> size
        self.mapped: dict[int, tuple[int, int]] = {}  # addr -> (size, handle)
        self.accessible: set[int] = set()
        self.exported: dict[int, int] = {}  # fd -> handle
        self.primary_refs = 0
        self._next_addr = 0x7F00_0000_0000
        self._next_handle = 1

    def __getattribute__(self, name: str) -> Any:
        attr = object.__getattribute__(self, name)
        if name.startswith("cu") and callable(attr):
            counter = object.__getattribute__(self, "calls")
            fail = object.__getattribute__(self, "fail")
            counter[name] += 1
            if name in fail:
                fail[name] -= 1
                if fail[name] <= 0:
                    del fail[name]
                    return lambda *a, **k: (CUresult.CUDA_ERROR_OUT_OF_MEMORY, None)
        return attr

    def _aligned(self, *values: int) -> bool:
        return all(v % self.gran == 0 for v in values)

    def cuInit(self, flags: int) -> Ret:
        return (CUresult.CUDA_SUCCESS,)

    def cuDeviceGet(self, ordinal: int) -> Ret:
        ok = 0 <= ordinal < self.devices
        return (CUresult.CUDA_SUCCESS if ok else CUresult.CUDA_ERROR_INVALID_VALUE), ordinal

    def cuDevicePrimaryCtxRetain(self, dev: int) -> Ret:
        self.primary_refs += 1
        return CUresult.CUDA_SUCCESS, f"ctx{dev}"

    def cuDevicePrimaryCtxRelease(self, dev: int) -> Ret:
        self.primary_refs -= 1
        return (CUresult.CUDA_SUCCESS,)

    def cuCtxSetCurrent(self, ctx: str) -> Ret:
        return (CUresult.CUDA_SUCCESS,)

    def cuMemGetAllocationGranularity(self, prop: _Prop, option: int) -> Ret:
        return CUresult.CUDA_SUCCESS, self.gran

    def cuMemAddressReserve(self, size: int, alignment: int, addr: int, flags: int) -> Ret:
        if not self._aligned(size):
            return CUresult.CUDA_ERROR_INVALID_VALUE, 0
        base = self._next_addr
        self._next_addr += size + self.gran  # a guard gap, as real reservations rarely abut
        self.reserved[base] = size
        return CUresult.CUDA_SUCCESS, base

    def cuMemAddressFree(self, ptr: int, size: int) -> Ret:
        ok = self.reserved.get(int(ptr)) == size and not any(int(ptr) <= a < int(ptr) + size for a in self.mapped)
        if ok:
            del self.reserved[int(ptr)]
        return (CUresult.CUDA_SUCCESS if ok else CUresult.CUDA_ERROR_INVALID_VALUE,)

    def cuMemCreate(self, size: int, prop: _Prop, flags: int) -> Ret:
        if not self._aligned(size):
            return CUresult.CUDA_ERROR_INVALID_VALUE, None
        if sum(self.allocations.values()) + size > self.memory:
            return CUresult.CUDA_ERROR_OUT_OF_MEMORY, None
        handle = _Handle(self._next_handle)
        self._next_handle += 1
        self.allocations[handle] = size
        return CUresult.CUDA_SUCCESS, handle

    def cuMemRelease(self, handle: int) -> Ret:
        ok = self.allocations.pop(int(handle), None) is not None
        return (CUresult.CUDA_SUCCESS if ok else CUresult.CUDA_ERROR_INVALID_VALUE,)

    def cuMemMap(self, ptr: int, size: int, offset: int, handle: int, flags: int) -> Ret:
        addr = int(ptr)
        inside = any(r <= addr and addr + size <= r + n for r, n in self.reserved.items())
        ok = offset == 0 and inside and int(handle) in self.allocations and self._aligned(addr, size)
        if ok:
            self.mapped[addr] = (size, int(handle))
        return (CUresult.CUDA_SUCCESS if ok else CUresult.CUDA_ERROR_INVALID_VALUE,)

    def cuMemSetAccess(self, ptr: int, size: int, desc: list[_Access], count: int) -> Ret:
        ok = int(ptr) in self.mapped and count == len(desc) == 1
        if ok:
            self.accessible.add(int(ptr))
        return (CUresult.CUDA_SUCCESS if ok else CUresult.CUDA_ERROR_INVALID_VALUE,)

    def cuMemUnmap(self, ptr: int, size: int) -> Ret:
        addr, end = int(ptr), int(ptr) + size
        gone = [a for a in self.mapped if addr <= a < end]
        for a in gone:
            del self.mapped[a]
            self.accessible.discard(a)
        return (CUresult.CUDA_SUCCESS if gone else CUresult.CUDA_ERROR_INVALID_VALUE,)

    def cuMemExportToShareableHandle(self, handle: int, kind: int, flags: int) -> Ret:
        if int(handle) not in self.allocations:
            return CUresult.CUDA_ERROR_INVALID_VALUE, -1
        fd = os.memfd_create("fake-cuda-export", os.MFD_CLOEXEC)  # a real descriptor, as the driver gives
        self.exported[fd] = int(handle)
        return CUresult.CUDA_SUCCESS, fd

    def cuMemImportFromShareableHandle(self, fd: int, kind: int) -> Ret:
        source = self.exported.pop(fd, None)
        if source is None:
            return CUresult.CUDA_ERROR_INVALID_VALUE, None
        os.close(fd)  # the driver does not keep the descriptor; the importer's copy is closed here
        handle = _Handle(self._next_handle)
        self._next_handle += 1
        self.allocations[handle] = self.allocations[source]
        return CUresult.CUDA_SUCCESS, handle
