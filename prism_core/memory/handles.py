"""A pool of pre-created physical handles, so mapping a page does not pay the vendor's create call.

kvcached creates a fresh physical allocation on every page map (about 0.2 ms per 2 MiB on an A100, its
bench_vmm); handles kept here are reused instead. Kept handles still hold memory, so the owner counts them
in what it holds from the broker.
"""

from __future__ import annotations

from prism_core.memory.vmm import VmmBackend


class HandlePool:
    """Handles of one size for one backend. Not thread-safe: the page mapper calls it under its lock."""

    def __init__(self, backend: VmmBackend, size: int, keep: int = 0) -> None:
        self.backend = backend
        self.size = size
        self.keep = keep
        self._spare: list[int] = []

    @property
    def spare(self) -> int:
        return len(self._spare)

    def take(self, count: int) -> list[int]:
        """`count` handles, spares first; all or none (handles created before a failure are released)."""
        reused = self._spare[len(self._spare) - min(count, len(self._spare)) :]
        del self._spare[len(self._spare) - len(reused) :]
        created: list[int] = []
        try:
            while len(reused) + len(created) < count:
                created.append(self.backend.create(self.size))
        except BaseException:
            self._spare.extend(reused)
            for h in created:
                self.backend.release(h)
            raise
        return reused + created

    def give(self, handles: list[int]) -> None:
        """Keep up to `keep` handles for reuse; release the rest."""
        room = max(0, self.keep - len(self._spare))
        self._spare.extend(handles[:room])
        for h in handles[room:]:
            self.backend.release(h)

    def adopt(self, handles: list[int]) -> None:
        """Add handles that came from elsewhere (donated by another process) as spares, beyond `keep` if
        need be: the next `take` uses them first."""
        self._spare.extend(handles)

    def take_spare(self) -> list[int]:
        """Every spare handle, now the caller's."""
        out, self._spare = self._spare, []
        return out

    def fill(self, count: int) -> int:
        """Pre-create handles up to `count` spares (never above `keep`); returns how many were created."""
        want = max(0, min(count, self.keep) - len(self._spare))
        self._spare.extend(self.backend.create(self.size) for _ in range(want))
        return want

    def shed(self, count: int) -> int:
        """Release up to `count` spare handles; returns how many were released."""
        n = min(count, len(self._spare))
        for _ in range(n):
            self.backend.release(self._spare.pop())
        return n
