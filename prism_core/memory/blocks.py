"""KV blocks over pages: numpy free stacks per page, best-fit on partly used pages.

Block `i` lives at byte `i * block_bytes` of every layer buffer (so the engine indexes one uniform tensor);
a block that would straddle two pages is never handed out. Page `p` holds the blocks that lie wholly inside
`[p * page_size, (p + 1) * page_size)`. Free blocks of a page are a stack (a row of `_stack`, top at
`_free[p]`), so batched alloc and free are numpy slices per page, never a Python object per block.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from prism_core.errors import UsageError

IdArray = npt.NDArray[np.int64]
UNMAPPED = -1


class BlockTable:
    """Which blocks are free, per page. Not thread-safe: the cache calls it under its lock."""

    def __init__(self, num_blocks: int, block_bytes: int, page_size: int) -> None:
        if block_bytes > page_size:
            raise UsageError(
                f"a KV block of {block_bytes} bytes does not fit a page of {page_size} bytes; "
                f"use a page size >= {block_bytes} (a multiple of the backend granularity) or smaller blocks"
            )
        self.num_blocks = num_blocks
        self.num_pages = -(-num_blocks * block_bytes // page_size)
        ids = np.arange(num_blocks, dtype=np.int64)
        start = ids * block_bytes
        whole = (start % page_size) + block_bytes <= page_size
        page = np.where(whole, start // page_size, UNMAPPED)
        self.block_page: IdArray = page.astype(np.int64)
        self.cap = np.bincount(page[whole], minlength=self.num_pages).astype(np.int64)
        self.usable_blocks = int(self.cap.sum())
        width = int(self.cap.max()) if self.num_pages else 0
        self._stack = np.full((self.num_pages, width), -1, dtype=np.int64)
        # Each page's blocks in descending order, so pops hand out ascending ids (pages ascend with block ids).
        held, pages = ids[whole], page[whole]
        within = np.arange(held.size) - np.searchsorted(pages, pages)
        self._stack[pages, self.cap[pages] - 1 - within] = held
        self._free = np.full(self.num_pages, UNMAPPED, dtype=np.int64)
        self._used = np.zeros(num_blocks, dtype=bool)
        self._n_used = 0

    # Pages ------------------------------------------------------------------------------------------------

    def mapped_pages(self) -> IdArray:
        return np.flatnonzero(self._free != UNMAPPED)

    def empty_pages(self) -> IdArray:
        """Mapped pages with no block in use (what the pre-mapper keeps ready, and what a shrink returns)."""
        return np.flatnonzero(self._free == self.cap)

    def unmapped_pages(self, count: int) -> IdArray:
        """The `count` lowest unmapped page ids (fewer if the virtual range is full)."""
        return np.flatnonzero(self._free == UNMAPPED)[:count]

    def add_pages(self, pages: IdArray) -> None:
        self._free[pages] = self.cap[pages]

    def drop_pages(self, pages: IdArray) -> None:
        if np.any(self._free[pages] != self.cap[pages]):
            raise AssertionError("only empty pages may be unmapped")
        self._free[pages] = UNMAPPED

    def free_on_mapped(self) -> int:
        f = self._free
        return int(f[f > 0].sum())

    def pages_needed(self, n: int) -> int:
        """New pages (lowest unmapped ids first) needed beyond the free blocks already mapped, for `n` blocks."""
        short = n - self.free_on_mapped()
        if short <= 0:
            return 0
        caps = self.cap[self._free == UNMAPPED]
        reach = np.cumsum(caps)
        k = int(np.searchsorted(reach, short)) + 1
        return k if k <= caps.size else -1

    # Blocks -----------------------------------------------------------------------------------------------

    def take(self, n: int) -> IdArray:
        """`n` blocks from mapped pages, best-fit on partly used ones; the caller checked `free_on_mapped()`."""
        out = np.empty(n, dtype=np.int64)
        got = self._take_partial(out, 0)
        if got < n:
            for p in self.empty_pages():
                got += self._pop(int(p), out, got)
                if got == n:
                    break
        if got != n:
            raise AssertionError(f"took {got} of {n} blocks: caller must check free_on_mapped() first")
        self._used[out] = True
        self._n_used += n
        return out

    def _take_partial(self, out: IdArray, got: int) -> int:
        f = self._free
        part = np.flatnonzero((f > 0) & (f < self.cap))
        free = f[part]
        while got < out.size and part.size:
            need = out.size - got
            fits = free >= need
            # Smallest page that holds the whole rest, else the emptiest: fewer pages pinned by one request.
            i = int(np.flatnonzero(fits)[np.argmin(free[fits])]) if fits.any() else int(np.argmax(free))
            got += self._pop(int(part[i]), out, got)
            part = np.delete(part, i)
            free = np.delete(free, i)
        return got

    def _pop(self, p: int, out: IdArray, got: int) -> int:
        top = int(self._free[p])
        k = min(top, out.size - got)
        out[got : got + k] = self._stack[p, top - k : top]
        self._free[p] = top - k
        return k

    def put(self, ids: IdArray) -> None:
        """Return blocks; UsageError (and no change) for an id out of range, straddling, free, or repeated."""
        if ids.size == 0:
            return
        if ids.min() < 0 or ids.max() >= self.num_blocks:
            raise UsageError(f"block ids must be in [0, {self.num_blocks}), got {ids.min()}..{ids.max()}")
        if not self._used[ids].all() or np.unique(ids).size != ids.size:
            raise UsageError("free() of a block that is not allocated (double free or a foreign id)")
        self._used[ids] = False
        self._n_used -= ids.size
        pages = self.block_page[ids]
        order = np.argsort(pages, kind="stable")
        pages, ids = pages[order], ids[order]
        uniq, first, counts = np.unique(pages, return_index=True, return_counts=True)
        for p, s, c in zip(uniq.tolist(), first.tolist(), counts.tolist(), strict=True):
            top = int(self._free[p])
            self._stack[p, top : top + c] = ids[s : s + c]
            self._free[p] = top + c

    def used_blocks(self) -> int:
        return self._n_used

    def pages_in_use(self) -> int:
        f = self._free
        return int(np.count_nonzero((f != UNMAPPED) & (f < self.cap)))
