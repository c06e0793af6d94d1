"""Virtual memory management: the interface accelerator plugins implement for the elastic KV pool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from prism_core.models import Device


class VmmError(RuntimeError):
    """The vendor (driver, kernel) refused a VMM call that was well-formed: out of memory, a driver error."""


@runtime_checkable
class VmmBackend(Protocol):
    """Reserve virtual ranges, back them with physical pages on demand, and share pages across processes.

    Sizes, addresses and offsets are multiples of `granularity`. Addresses and handles are plain ints so the
    pool above stays vendor-neutral. Each call either succeeds or raises and leaves nothing half-done:
    `UsageError` for a malformed call (misaligned, outside a reservation, unknown handle), `VmmError` when the
    vendor refuses a well-formed one.
    """

    device: Device
    granularity: int
    host_accessible: bool
    """True when this process can read and write mapped memory at its address (the cpu backend)."""

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

    def map(self, addr: int, size: int, handle: int) -> None:
        """Map the whole of `handle` (`size` bytes) at `addr` inside a reservation, readable and writable by
        this process's device. (No offset: CUDA requires offset 0, so no backend offers one.)"""
        ...

    def unmap(self, addr: int, size: int) -> None:
        """Unmap whole mappings; the range stays reserved and faults on access instead of reading stale memory."""
        ...

    def export(self, handle: int) -> int:
        """A shareable handle another process can import: a new file descriptor owned by the caller."""
        ...

    def import_(self, shareable: int) -> int:
        """Import a handle exported by another process (taking ownership of the descriptor); returns a local
        physical handle."""
        ...

    def close(self) -> None:
        """Release everything this backend still holds. Idempotent."""
        ...


def map_all(backend: VmmBackend, pages: Sequence[tuple[int, int, int]]) -> None:
    """Map every `(addr, size, handle)` or none: on any failure the ones already mapped are unmapped again,
    then the error propagates. kvcached's batches were not transactional (its issue #412); ours are."""
    done: list[tuple[int, int]] = []
    try:
        for addr, size, handle in pages:
            backend.map(addr, size, handle)
            done.append((addr, size))
    except BaseException:
        for addr, size in reversed(done):
            backend.unmap(addr, size)
        raise


def unmap_all(backend: VmmBackend, ranges: Sequence[tuple[int, int]]) -> None:
    """Unmap every `(addr, size)`, attempting all of them; the first failure is raised after the rest ran."""
    first: BaseException | None = None
    for addr, size in ranges:
        try:
            backend.unmap(addr, size)
        except Exception as exc:  # keep unmapping the others; a partial unmap would leak pages
            first = first or exc
    if first is not None:
        raise first
