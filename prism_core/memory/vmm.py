"""Virtual memory management: the interface accelerator plugins implement for the elastic KV pool."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from prism_core.models import Device


@runtime_checkable
class VmmBackend(Protocol):
    """Reserve virtual ranges, back them with physical pages on demand, and share pages across processes.

    Sizes and offsets are multiples of `granularity`. Addresses and handles are plain ints so the pool
    above stays vendor-neutral. Each call either succeeds or raises and leaves nothing half-done.
    """

    device: Device
    granularity: int

    def reserve(self, size: int) -> int:
        """Reserve `size` bytes of virtual address space with no physical memory; returns the address."""
        ...

    def free(self, addr: int, size: int) -> None:
        """Give a reservation back. Every page in it must be unmapped first."""
        ...

    def create(self, size: int) -> int:
        """Create a physical allocation of `size` bytes; returns its handle."""
        ...

    def release(self, handle: int) -> None:
        """Free a physical allocation (its memory returns once no mapping uses it)."""
        ...

    def map(self, addr: int, size: int, handle: int, offset: int = 0) -> None:
        """Map `size` bytes of `handle` from `offset` at `addr`, readable and writable by this process."""
        ...

    def unmap(self, addr: int, size: int) -> None:
        """Unmap; the range stays reserved and faults on access instead of reading stale memory."""
        ...

    def export(self, handle: int) -> int:
        """A shareable handle another process can import (a file descriptor where the vendor uses one)."""
        ...

    def import_(self, shareable: int) -> int:
        """Import a handle exported by another process; returns a local physical handle."""
        ...

    def close(self) -> None:
        """Release everything this backend still holds. Idempotent."""
        ...
