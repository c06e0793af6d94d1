"""ElasticKVCache: a model's KV cache on reserved virtual memory, with pages mapped on demand.

The engine gets per-layer tensor views of the whole reservation once; `alloc(n)` hands out block ids,
mapping pages (after asking the device's broker) only when the free blocks on mapped pages run out; `free`
returns blocks and unmaps empty pages beyond the pre-mapped reserve, or to honour the broker's reclaim
asks and a local limit (ballooning). A background thread keeps `min_reserved_pages` pre-mapped and gives
pages back promptly when an idle model is asked to.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from prism_core.errors import UsageError
from prism_core.memory.blocks import BlockTable, IdArray
from prism_core.memory.broker import Broker, Member
from prism_core.memory.broker.mailbox import donate
from prism_core.memory.pages import PageMapper
from prism_core.memory.report import KvUsage
from prism_core.memory.results import CannotSchedule
from prism_core.memory.spec import DEFAULT_PAGE_SIZE, KvSpec
from prism_core.memory.views import Geometry, Layout, numpy_views, torch_views
from prism_core.memory.vmm import VmmBackend, VmmError

NULL_BLOCK = 0


class ElasticKVCache:
    """One model's elastic KV cache. Thread-safe (one lock; the engine thread and the pre-mapper share it)."""

    def __init__(
        self,
        spec: KvSpec,
        num_blocks: int,
        *,
        backend: VmmBackend,
        page_size: int = DEFAULT_PAGE_SIZE,
        member: Member | None = None,
        name: str = "kv",
        reserve_null_block: bool = True,
        min_reserved_pages: int = 0,
        max_reserved_pages: int | None = None,
        keep_handles: int = 0,
        acquire_timeout_s: float = 0.2,
        background: bool = True,
        tick_s: float = 0.005,
        donate: bool = True,
        on_pages: Callable[[list[int], bool], None] | None = None,
    ) -> None:
        if num_blocks < 1:
            raise UsageError(f"num_blocks must be >= 1, got {num_blocks}")
        if page_size <= 0 or page_size % backend.granularity:
            raise UsageError(f"page size {page_size} is not a multiple of {backend.granularity} ({backend.device.id})")
        max_reserved = max(min_reserved_pages, 1) if max_reserved_pages is None else max_reserved_pages
        if not 0 <= min_reserved_pages <= max_reserved:
            raise UsageError(f"need 0 <= min_reserved_pages <= max_reserved_pages, got {min_reserved_pages}")
        self.spec = spec
        self.name = name
        self.backend = backend
        self.member = member
        self.min_reserved_pages = min_reserved_pages
        self.max_reserved_pages = max_reserved
        self.acquire_timeout_s = acquire_timeout_s
        self.tick_s = tick_s
        self.donate = donate
        self.table = BlockTable(num_blocks, spec.block_bytes, page_size)
        region = self.table.num_pages * page_size
        base = backend.reserve(region * spec.buffers)
        self.geometry = Geometry(spec, base, region, num_blocks)
        self.pages = PageMapper(backend, base, spec.buffers, region, page_size, keep_handles)
        self.pages.on_change = on_pages  # told (page ids, mapped) after each change, under the lock
        self.limit_bytes: int | None = None
        self.null_block: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owned: list[Any] = []
        if reserve_null_block:
            got = self.alloc(1)
            if isinstance(got, CannotSchedule):
                self.close()
                raise UsageError(f"{name}: cannot map the page of the null block: {got.reason}")
            self.null_block = int(got[0])
        if background and (member is not None or min_reserved_pages > 0):
            self._thread = threading.Thread(target=self._run, name=f"prism-kv-{name}", daemon=True)
            self._thread.start()

    @classmethod
    def for_device(
        cls,
        spec: KvSpec,
        num_blocks: int,
        *,
        device: str = "cpu:0",
        name: str,
        min_bytes: int = 0,
        max_bytes: int | None = None,
        priority: int = 0,
        broker_dir: Path | None = None,
        shadow: bool = False,
        **options: Any,
    ) -> ElasticKVCache:
        """A cache on `device` through its plugin's VMM backend, registered with the device's broker (whose
        ledger lives in `broker_dir`, default $PRISM_BROKER_DIR). `shadow`: blocks and budget only, on a
        `ShadowBackend`, for a process whose pages another process maps."""
        from prism_core.memory.shadow import ShadowBackend
        from prism_core.plugins import host

        h = host()
        dev = h.device(device)
        backend = ShadowBackend(dev) if shadow else h.vmm_backend(dev)
        if backend is None:
            raise UsageError(f"no plugin offers a VMM backend for {device} (see `prism plugins`)")
        broker = Broker.for_device(dev, broker_dir)
        try:
            member = broker.register(name, min_bytes=min_bytes, max_bytes=max_bytes, priority=priority)
        except BaseException:
            broker.close()
            backend.close()
            raise
        try:
            cache = cls(spec, num_blocks, backend=backend, member=member, name=name, **options)
        except BaseException:
            member.close()
            broker.close()
            backend.close()
            raise
        cache._owned = [member, broker, backend]
        return cache

    # Engine API -------------------------------------------------------------------------------------------

    def tensors(self, layout: Layout = "kv_first") -> list[Any]:
        """Per-layer torch views shaped like the engine's KV tensors (see `prism_core.memory.views`)."""
        return torch_views(self.geometry, layout)

    def arrays(self, layout: Layout = "kv_first") -> list[Any]:
        """Per-layer numpy views, for engines and tests without torch."""
        return numpy_views(self.geometry, layout)

    def alloc(self, n: int, *, wait_s: float | None = None) -> IdArray | CannotSchedule:
        """`n` block ids, or `CannotSchedule` when the broker, the local limit or the reservation says not now.
        Lower-priority models are asked to give back and waited for up to `wait_s` (default
        `acquire_timeout_s`; 0 asks without waiting, so a later call finds the memory). Asking for more blocks
        than the whole reservation holds is a UsageError."""
        usable = self.table.usable_blocks - (self.null_block is not None)
        if n > usable:
            raise UsageError(f"{self.name}: {n} blocks requested, the virtual reservation holds {usable}")
        if n <= 0:
            return np.empty(0, dtype=np.int64)
        with self._lock:
            if self.table.free_on_mapped() < n:
                k = self.table.pages_needed(n)
                if k < 0:
                    left = usable - self.table.used_blocks() + (self.null_block is not None)
                    return CannotSchedule(f"{self.name}: {n} blocks asked, {left} left in the reservation", n)
                grown = self._grow(k, reclaim=True, wait_s=wait_s)
                if grown is not None:
                    return grown
            return self.table.take(n)

    def free(self, ids: IdArray | list[int]) -> None:
        """Return blocks; empty pages beyond the reserve (or asked back by the broker) are unmapped."""
        arr = np.asarray(ids, dtype=np.int64)
        if self.null_block is not None and np.any(arr == self.null_block):
            raise UsageError(f"{self.name}: block {self.null_block} is the reserved null block; do not free it")
        with self._lock:
            self.table.put(arr)
            self._settle()

    def available_blocks(self) -> int:
        """Blocks allocatable without mapping (free blocks on mapped pages)."""
        with self._lock:
            return self.table.free_on_mapped()

    def mapped_pages(self) -> list[int]:
        """Page ids mapped now (what a process following this cache must map)."""
        with self._lock:
            return self.pages.mapped_ids()

    def unused_blocks(self) -> int:
        """Blocks of the reservation not in use, mapped or not: what an engine may plan with (`alloc` still asks
        the broker for the pages)."""
        with self._lock:
            return self.table.usable_blocks - self.table.used_blocks()

    def resize(self, limit_bytes: int | None) -> None:
        """Balloon: cap what this cache holds (None lifts the cap). Pages in use are kept; the cache shrinks
        as blocks are freed (no live KV is dropped), and grows again when the cap is raised."""
        if limit_bytes is not None and limit_bytes < 0:
            raise UsageError(f"{self.name}: limit must be >= 0 bytes, got {limit_bytes}")
        with self._lock:
            self.limit_bytes = limit_bytes
            self._settle()

    def trim(self) -> int:
        """Unmap every empty page and spare handle now; returns the bytes given back."""
        with self._lock:
            return self._give_back(len(self.table.empty_pages()), shed_all=True)

    def usage(self) -> KvUsage:
        with self._lock:
            t = self.table
            mapped = len(t.mapped_pages())
            reserved = len(t.empty_pages())
            return KvUsage(
                name=self.name,
                page_size=self.pages.page_size,
                page_bytes=self.pages.page_bytes,
                blocks_total=t.usable_blocks,
                blocks_used=t.used_blocks(),
                blocks_free_mapped=t.free_on_mapped(),
                pages_virtual=t.num_pages,
                pages_mapped=mapped,
                pages_in_use=mapped - reserved,
                pages_reserved=reserved,
                spare_handles=self.pages.handles.spare,
                held_bytes=self.pages.held_bytes,
                limit_bytes=self.limit_bytes,
            )

    def close(self) -> None:
        """Stop the pre-mapper, unmap everything, give the budget back. Drop the tensor views first: the
        reserved range is freed, and touching a view afterwards faults."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            held = self.pages.held_bytes
            self.pages.close()
            if self.member is not None and held:
                self.member.release(held)
            if self.geometry.base:
                self.backend.free(self.geometry.base, self.geometry.total_bytes())
                self.geometry = Geometry(self.spec, 0, self.geometry.region_bytes, self.geometry.num_blocks)
        for owned in self._owned:
            owned.close()
        self._owned = []

    def __enter__(self) -> ElasticKVCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Internals (called under the lock) --------------------------------------------------------------------

    def _grow(self, k: int, reclaim: bool, wait_s: float | None = None) -> CannotSchedule | None:
        """Map `k` more pages, all or none, after the local limit and the broker agree."""
        spare = self.pages.handles.spare * self.pages.page_size
        need = max(0, k * self.pages.page_bytes - spare)
        if self.limit_bytes is not None and self.pages.held_bytes + need > self.limit_bytes:
            return CannotSchedule(f"{self.name}: its limit of {self.limit_bytes} bytes is reached", need)
        if self.member is not None and need:
            wait = self.acquire_timeout_s if wait_s is None else wait_s
            answer = self.member.acquire(need, reclaim=reclaim, timeout_s=wait if reclaim else 0)
            if isinstance(answer, CannotSchedule):
                return answer
        pages = self.table.unmapped_pages(k)
        before = self.pages.held_bytes
        if need:  # granted bytes that another model may have donated its pages for
            self._adopt(k * self.spec.buffers - self.pages.handles.spare)
        try:
            self.pages.map(pages.tolist())
        except VmmError as exc:
            self._settle_budget(before, need)
            return CannotSchedule(f"{self.name}: the device refused a page: {exc}", need)
        except BaseException:
            self._settle_budget(before, need)
            raise
        self.table.add_pages(pages)
        self._settle_budget(before, need)
        return None

    def _settle_budget(self, before: int, granted: int) -> None:
        """Return to the broker whatever of `granted` the mapper did not end up holding."""
        unused = granted - (self.pages.held_bytes - before)
        if self.member is not None and unused > 0:
            self.member.release(unused)

    def _settle(self) -> None:
        """Unmap empty pages beyond the reserve, and as many more as the broker or the limit asks."""
        excess = self.member.reclaim_requested() if self.member is not None else 0
        if self.limit_bytes is not None:
            excess = max(excess, self.pages.held_bytes - self.limit_bytes)
        empty = len(self.table.empty_pages())
        beyond_reserve = max(0, empty - self.max_reserved_pages)
        if excess <= 0:
            if beyond_reserve:
                self._give_back(beyond_reserve, shed_all=False)
            return
        # A pending ask never makes the cache keep more than it would unasked: give back the larger of the two.
        spare_bytes = self.pages.handles.spare * self.pages.page_size
        asked = -(-max(0, excess - spare_bytes) // self.pages.page_bytes)
        self._give_back(min(max(asked, beyond_reserve), empty), shed_all=True)

    def _adopt(self, want: int) -> None:
        """Take up to `want` handles other models donated (as spares, used by the next map); close the rest."""
        mailbox = self.member.mailbox if self.member is not None else None
        if mailbox is not None:
            self.pages.handles.adopt(mailbox.drain(self.backend, self.pages.page_size, max(want, 0)))

    def _donee(self) -> tuple[int, int] | None:
        if not self.donate or self.member is None or not getattr(self.backend, "export_is_fd", True):
            return None
        return self.member.donee() if self.member.reclaim_requested() else None

    def _give_back(self, pages: int, shed_all: bool) -> int:
        before = self.pages.held_bytes
        victims = self.table.empty_pages()[::-1][:pages]  # highest ids first: the low ones stay dense
        donee = self._donee()
        if donee is not None and self.member is not None:
            # Hand the pages over before giving their bytes back: the waiter maps them, and this process
            # unmaps its side afterwards, off the waiter's critical path.
            self.table.drop_pages(victims)
            handles, ranges = self.pages.detach(victims.tolist())
            handles += self.pages.handles.take_spare() if shed_all else []
            fds = [self.backend.export(h) for h in handles]
            try:
                sent = donate(self.member.where, *donee, self.pages.page_size, fds)
            finally:
                for fd in fds:
                    os.close(fd)
            if not sent:  # nobody took them: free the memory before its budget goes back, as usual
                self.pages.drop(handles, ranges)
            given = before - self.pages.held_bytes
            self.member.release(given)
            if sent:
                self.pages.drop(handles, ranges)
            return given
        if victims.size:
            self.table.drop_pages(victims)
            self.pages.unmap(victims.tolist())
        if shed_all:
            self.pages.handles.shed(self.pages.handles.spare)
        given = before - self.pages.held_bytes
        if self.member is not None and given:
            self.member.release(given)
        return given

    def _top_up(self) -> None:
        short = self.min_reserved_pages - len(self.table.empty_pages())
        # Never past the reservation: asking the broker every tick for a page that has nowhere to go would
        # cost the engine two ledger transactions per tick.
        short = min(short, self.table.unmapped_pages(short).size) if short > 0 else 0
        if short <= 0 or (self.member is not None and self.member.reclaim_requested()):
            return
        for _ in range(short):
            if self._grow(1, reclaim=False) is not None:
                return

    def _run(self) -> None:
        # Polling the ledger's reclaim field is a lock-free 8-byte read: an idle model answers within a tick.
        while not self._stop.wait(self.tick_s):
            with self._lock:
                self._adopt(0)  # donations that came after a grant was met otherwise: free them now
                self._settle()
                self._top_up()
