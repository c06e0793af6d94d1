"""Bookkeeping every VMM backend shares: reservations, physical handles and mappings, checked before any
vendor call so a malformed request is a one-line `UsageError` and never reaches the driver half-done."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from prism_core.errors import UsageError


@dataclass(slots=True)
class RangeBook:
    """What one backend holds. Not thread-safe by itself: backends call it under their own lock."""

    granularity: int
    reservations: dict[int, int] = field(default_factory=dict)  # addr -> size
    handles: dict[int, int] = field(default_factory=dict)  # handle -> size
    mappings: dict[int, tuple[int, int]] = field(default_factory=dict)  # addr -> (size, handle)
    _starts: list[int] = field(default_factory=list)  # sorted mapping addresses

    def aligned(self, what: str, value: int) -> None:
        if value <= 0 and what == "size":
            raise UsageError(f"VMM {what} must be positive, got {value}")
        if value % self.granularity:
            raise UsageError(f"VMM {what} {value:#x} is not a multiple of the granularity {self.granularity:#x}")

    def check_create(self, size: int) -> None:
        self.aligned("size", size)

    def add_reservation(self, addr: int, size: int) -> None:
        self.reservations[addr] = size

    def check_free(self, addr: int, size: int) -> None:
        if self.reservations.get(addr) != size:
            raise UsageError(f"no reservation of {size:#x} bytes at {addr:#x} (free takes what reserve returned)")
        i = bisect.bisect_left(self._starts, addr)
        if i < len(self._starts) and self._starts[i] < addr + size:
            raise UsageError(f"reservation at {addr:#x} still has mapped pages; unmap them before free")

    def remove_reservation(self, addr: int) -> None:
        del self.reservations[addr]

    def size_of(self, handle: int) -> int:
        try:
            return self.handles[handle]
        except KeyError:
            raise UsageError(f"unknown or released physical handle {handle}") from None

    def check_map(self, addr: int, size: int, handle: int) -> None:
        self.aligned("address", addr)
        self.aligned("size", size)
        if self.size_of(handle) != size:
            raise UsageError(f"map size {size:#x} differs from the handle's size {self.handles[handle]:#x}")
        if not any(r <= addr and addr + size <= r + n for r, n in self.reservations.items()):
            raise UsageError(f"range {addr:#x}+{size:#x} is outside every reservation of this backend")
        i = bisect.bisect_right(self._starts, addr)
        prev_overlaps = i > 0 and self._starts[i - 1] + self.mappings[self._starts[i - 1]][0] > addr
        next_overlaps = i < len(self._starts) and self._starts[i] < addr + size
        if prev_overlaps or next_overlaps:
            raise UsageError(f"range {addr:#x}+{size:#x} overlaps a mapping; unmap it first")

    def add_mapping(self, addr: int, size: int, handle: int) -> None:
        self.mappings[addr] = (size, handle)
        bisect.insort(self._starts, addr)

    def covered(self, addr: int, size: int) -> list[int]:
        """The mapping addresses that exactly tile `[addr, addr+size)`; UsageError if they do not."""
        out = []
        pos = addr
        i = bisect.bisect_left(self._starts, addr)
        while pos < addr + size:
            if i >= len(self._starts) or self._starts[i] != pos:
                raise UsageError(f"no mapping starts at {pos:#x}; unmap takes whole mapped pages")
            out.append(pos)
            pos += self.mappings[pos][0]
            i += 1
        if pos != addr + size:
            raise UsageError(f"unmap of {addr:#x}+{size:#x} would split the mapping ending at {pos:#x}")
        return out

    def remove_mapping(self, addr: int) -> None:
        del self.mappings[addr]
        self._starts.pop(bisect.bisect_left(self._starts, addr))

    def mapped_handles(self) -> set[int]:
        return {h for _, h in self.mappings.values()}
