"""Host virtual memory for the elastic KV pool: memfd pages mapped into a PROT_NONE reservation via libc mmap.

- reserve: mmap(PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE) takes address space, no memory.
- create: memfd_create + ftruncate; the file descriptor is the physical handle (and, dup'ed, its export).
- map: mmap(MAP_FIXED|MAP_SHARED, PROT_READ|PROT_WRITE) of the memfd over the reservation.
- unmap: an anonymous PROT_NONE MAP_FIXED mapping over the range, so a stray access is SIGSEGV rather than a
  read of stale or zero memory (kvcached maps a shared zero page instead, which hides such bugs).
- release: close the memfd; the kernel frees its memory when the last mapping or descriptor goes.
"""

from __future__ import annotations

import ctypes
import os
import threading

from prism_core.errors import UsageError
from prism_core.memory import RangeBook, VmmError
from prism_core.models import Device

# Linux mmap constants; identical on x86_64 and arm64 (asm-generic).
PROT_NONE, PROT_READ, PROT_WRITE = 0, 1, 2
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS, MAP_NORESERVE = 0x01, 0x02, 0x10, 0x20, 0x4000
MAP_FAILED = ctypes.c_void_p(-1).value

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        lib.mmap.restype = ctypes.c_void_p
        lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        lib.munmap.restype = ctypes.c_int
        _libc = lib
    return _libc


def _mmap(addr: int | None, size: int, prot: int, flags: int, fd: int, what: str) -> int:
    out = _lib().mmap(addr, size, prot, flags, fd, 0)
    if out is None or out == MAP_FAILED:
        err = ctypes.get_errno()
        raise VmmError(f"{what}: mmap failed: {os.strerror(err)} (errno {err})")
    return int(out)


def _munmap(addr: int, size: int) -> None:
    if _lib().munmap(addr, size) != 0:
        err = ctypes.get_errno()
        raise VmmError(f"munmap({addr:#x}, {size:#x}) failed: {os.strerror(err)}")


class CpuVmm:
    """The cpu plugin's VmmBackend. Thread-safe; one per process is enough."""

    host_accessible = True

    def __init__(self, device: Device) -> None:
        self.device = device
        self.granularity = os.sysconf("SC_PAGE_SIZE")
        self._book = RangeBook(self.granularity)
        self._lock = threading.Lock()

    def reserve(self, size: int) -> int:
        with self._lock:
            self._book.aligned("size", size)
            addr = _mmap(None, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, "reserve")
            self._book.add_reservation(addr, size)
            return addr

    def free(self, addr: int, size: int) -> None:
        with self._lock:
            self._book.check_free(addr, size)
            _munmap(addr, size)
            self._book.remove_reservation(addr)

    def create(self, size: int) -> int:
        with self._lock:
            self._book.check_create(size)
            fd = os.memfd_create("prism-kv", os.MFD_CLOEXEC)
            try:
                os.ftruncate(fd, size)
            except OSError as exc:
                os.close(fd)
                raise VmmError(f"create({size:#x}): ftruncate failed: {exc}") from exc
            self._book.handles[fd] = size
            return fd

    def release(self, handle: int) -> None:
        with self._lock:
            self._book.size_of(handle)
            del self._book.handles[handle]
            os.close(handle)  # a live mapping keeps the memory until it is unmapped, as cuMemRelease does

    def map(self, addr: int, size: int, handle: int) -> None:
        with self._lock:
            self._book.check_map(addr, size, handle)
            _mmap(addr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, handle, f"map at {addr:#x}")
            self._book.add_mapping(addr, size, handle)

    def unmap(self, addr: int, size: int) -> None:
        with self._lock:
            starts = self._book.covered(addr, size)
            flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED
            _mmap(addr, size, PROT_NONE, flags, -1, f"unmap at {addr:#x}")
            for start in starts:
                self._book.remove_mapping(start)

    def export(self, handle: int) -> int:
        with self._lock:
            self._book.size_of(handle)
            return os.dup(handle)

    def import_(self, shareable: int) -> int:
        with self._lock:
            if shareable in self._book.handles:
                raise UsageError(f"descriptor {shareable} is already a handle of this backend; import a dup")
            try:
                size = os.fstat(shareable).st_size
            except OSError as exc:
                raise UsageError(f"cannot import descriptor {shareable}: {exc}") from exc
            self._book.check_create(size)
            self._book.handles[shareable] = size
            return shareable

    def close(self) -> None:
        with self._lock:
            book = self._book
            for addr, (size, _) in list(book.mappings.items()):
                _mmap(addr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, "close")
                book.remove_mapping(addr)
            for addr, size in list(book.reservations.items()):
                _munmap(addr, size)
                book.remove_reservation(addr)
            for fd in list(book.handles):
                os.close(fd)
                del book.handles[fd]
