"""Which page ids one process has mapped, as a byte per page in a shared file another process reads.

vLLM's scheduler (engine-core process) writes it as its `ElasticKVCache` maps and gives back pages; the worker
process that holds the memory reads it while idle and unmaps what the scheduler gave back
(prism_plugins.frameworks.vllm.kv).
"""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path


class PageMap:
    """A byte per page id: 1 mapped, 0 not. Single writer; readers see each byte flip whole."""

    def __init__(self, path: Path, num_pages: int, *, create: bool) -> None:
        self.path = path
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, num_pages)
            self._mm = mmap.mmap(fd, num_pages)
        finally:
            os.close(fd)

    @classmethod
    def new(cls, num_pages: int) -> PageMap:
        """A fresh map in shared memory (/dev/shm where there is one)."""
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, name = tempfile.mkstemp(prefix="prism-kv-pages-", dir=folder)
        os.close(fd)
        return cls(Path(name), num_pages, create=True)

    def set(self, pages: list[int], mapped: bool) -> None:
        value = 1 if mapped else 0
        for p in pages:
            self._mm[p] = value

    def snapshot(self) -> bytes:
        """The whole map, to tell cheaply whether anything changed."""
        return self._mm[:]

    def unmapped(self, pages: list[int]) -> list[int]:
        """Those of `pages` the writer does not have mapped."""
        return [p for p in pages if not self._mm[p]]

    def close(self, unlink: bool = False) -> None:
        self._mm.close()
        if unlink:
            self.path.unlink(missing_ok=True)
