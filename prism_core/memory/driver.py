"""The bookkeeping every device VMM backend shares; vendors supply only their driver calls.

CUDA (cuMem*), HIP (hipMem*) and ACL (aclrt*Mem*) follow one flow: reserve a virtual range, create a physical
allocation, map it (then grant access), unmap, release, free the range, and export/import a handle. A
subclass implements the `_vendor` steps (each raising `VmmError` when the driver refuses); this class checks
every call before the driver sees it (`RangeBook`), keeps the driver's handle objects behind plain ints, and
serialises calls with a lock.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from prism_core.memory.ranges import RangeBook
from prism_core.memory.vmm import VmmError
from prism_core.models import Device


class DriverVmm:
    """A `VmmBackend` over a device driver's VMM calls. Subclasses implement the `_` steps below."""

    host_accessible = False
    export_is_fd = True
    """Whether `export` gives a file descriptor (CUDA, HIP) that can travel over a Unix socket, or an opaque
    id (ACL's uint64 shareable handle)."""

    def __init__(self, device: Device, granularity: int) -> None:
        self.device = device
        self.granularity = granularity
        self._book = RangeBook(granularity)
        self._objects: dict[int, Any] = {}  # int handle -> the driver's handle object
        self._lock = threading.Lock()
        self._closed = False

    # Vendor steps ----------------------------------------------------------------------------------------

    def _reserve(self, size: int) -> int:
        raise NotImplementedError

    def _free(self, addr: int, size: int) -> None:
        raise NotImplementedError

    def _create(self, size: int) -> Any:
        raise NotImplementedError

    def _release(self, obj: Any) -> None:
        raise NotImplementedError

    def _map(self, addr: int, size: int, obj: Any) -> None:
        """Map and grant this device read-write access; on failure leave nothing mapped."""
        raise NotImplementedError

    def _unmap(self, addr: int, size: int) -> None:
        raise NotImplementedError

    def _export(self, obj: Any) -> int:
        raise NotImplementedError

    def _import(self, shareable: int) -> Any:
        raise NotImplementedError

    def _shutdown(self) -> None:
        """Let go of the device (context) after everything is released."""

    # VmmBackend -------------------------------------------------------------------------------------------

    def reserve(self, size: int) -> int:
        with self._lock:
            self._book.aligned("size", size)
            addr = self._reserve(size)
            self._book.add_reservation(addr, size)
            return addr

    def free(self, addr: int, size: int) -> None:
        with self._lock:
            self._book.check_free(addr, size)
            self._free(addr, size)
            self._book.remove_reservation(addr)

    def create(self, size: int) -> int:
        with self._lock:
            self._book.check_create(size)
            return self._adopt(self._create(size), size)

    def _adopt(self, obj: Any, size: int) -> int:
        handle = int(obj)
        self._objects[handle] = obj
        self._book.handles[handle] = size
        return handle

    def release(self, handle: int) -> None:
        with self._lock:
            self._book.size_of(handle)
            self._release(self._objects[handle])
            del self._book.handles[handle], self._objects[handle]

    def map(self, addr: int, size: int, handle: int) -> None:
        with self._lock:
            self._book.check_map(addr, size, handle)
            self._map(addr, size, self._objects[handle])
            self._book.add_mapping(addr, size, handle)

    def unmap(self, addr: int, size: int) -> None:
        with self._lock:
            starts = self._book.covered(addr, size)
            self._unmap(addr, size)
            for start in starts:
                self._book.remove_mapping(start)

    def export(self, handle: int) -> int:
        with self._lock:
            self._book.size_of(handle)
            return self._export(self._objects[handle])

    def import_(self, shareable: int) -> int:
        with self._lock:
            # Drivers do not say an imported allocation's size; pages are one granule or the pool's page
            # size, which the importer passes to map and which map checks against this.
            return self._adopt(self._import(shareable), self.granularity)

    def close(self) -> None:
        """Unmap, release and free everything still held (driver refusals ignored: this is teardown)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            book = self._book
            for addr, (size, _) in list(book.mappings.items()):
                _quietly(self._unmap, addr, size)
                book.remove_mapping(addr)
            for handle in list(book.handles):
                _quietly(self._release, self._objects.pop(handle))
                del book.handles[handle]
            for addr, size in list(book.reservations.items()):
                _quietly(self._free, addr, size)
                book.remove_reservation(addr)
            self._shutdown()


def _quietly(step: Any, *args: Any) -> None:
    with contextlib.suppress(VmmError):
        step(*args)
