"""Page ids to physical pages: one page id is one physical page in every layer buffer, mapped all or none."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prism_core.memory.handles import HandlePool
from prism_core.memory.vmm import VmmBackend, map_all, unmap_all


class PageMapper:
    """Maps page ids of a reservation laid out as `buffers` regions of `region_bytes` each.

    Region `j` (layer `j // kv_buffers`, K or V `j % kv_buffers`) starts at `base + j * region_bytes`; page
    id `p` is the `page_size` bytes at offset `p * page_size` of every region. Not thread-safe.
    """

    def __init__(
        self, backend: VmmBackend, base: int, buffers: int, region_bytes: int, page_size: int, keep_handles: int
    ) -> None:
        self.backend = backend
        self.base = base
        self.buffers = buffers
        self.region_bytes = region_bytes
        self.page_size = page_size
        self.handles = HandlePool(backend, page_size, keep_handles * buffers)
        self._mapped: dict[int, list[int]] = {}
        self.on_change: Callable[[list[int], bool], None] | None = None  # (page ids, now mapped) after a change

    @property
    def page_bytes(self) -> int:
        """Physical bytes one page id costs."""
        return self.page_size * self.buffers

    @property
    def mapped(self) -> int:
        return len(self._mapped)

    @property
    def held_bytes(self) -> int:
        """Physical memory held: mapped pages plus spare handles."""
        return (len(self._mapped) * self.buffers + self.handles.spare) * self.page_size

    def mapped_ids(self) -> list[int]:
        return list(self._mapped)

    def addresses(self, page: int) -> list[int]:
        """Where page id `page` lies in every layer buffer."""
        return [self.base + j * self.region_bytes + page * self.page_size for j in range(self.buffers)]

    def map(self, pages: Iterable[int]) -> None:
        """Map every page id, or none of them (handles go back to the pool on failure)."""
        pages = list(pages)
        handles = self.handles.take(len(pages) * self.buffers)
        triples = [
            (addr, self.page_size, handles[i * self.buffers + j])
            for i, p in enumerate(pages)
            for j, addr in enumerate(self.addresses(p))
        ]
        try:
            map_all(self.backend, triples)
        except BaseException:
            self.handles.give(handles)
            raise
        for i, p in enumerate(pages):
            self._mapped[p] = handles[i * self.buffers : (i + 1) * self.buffers]
        self._changed(pages, True)

    def unmap(self, pages: Iterable[int]) -> None:
        """Unmap page ids; their handles go to the pool (kept up to its size, released beyond)."""
        done: list[int] = []
        try:
            for p in pages:
                handles = self._mapped.pop(p)
                done.append(p)
                try:
                    unmap_all(self.backend, [(a, self.page_size) for a in self.addresses(p)])
                finally:
                    self.handles.give(handles)
        finally:
            self._changed(done, False)

    def detach(self, pages: Iterable[int]) -> tuple[list[int], list[tuple[int, int]]]:
        """Forget page ids without unmapping them yet: (their handles, their ranges), for the caller to donate
        the handles and then `drop` both."""
        handles: list[int] = []
        ranges: list[tuple[int, int]] = []
        pages = list(pages)
        for p in pages:
            handles += self._mapped.pop(p)
            ranges += [(a, self.page_size) for a in self.addresses(p)]
        self._changed(pages, False)
        return handles, ranges

    def drop(self, handles: list[int], ranges: list[tuple[int, int]]) -> None:
        """Unmap detached ranges and release their handles (and any others given)."""
        try:
            unmap_all(self.backend, ranges)
        finally:
            for h in handles:
                self.backend.release(h)

    def _changed(self, pages: list[int], mapped: bool) -> None:
        if self.on_change is not None and pages:
            self.on_change(pages, mapped)

    def close(self) -> None:
        self.unmap(list(self._mapped))
        self.handles.shed(self.handles.spare)
