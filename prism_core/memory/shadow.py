"""A VMM backend with no memory behind it, for a process that decides which pages another process maps.

vLLM's scheduler runs in its engine-core process while the KV cache lives in a worker process: the scheduler's
`ElasticKVCache` keeps the block table and the broker's budget on a `ShadowBackend`, and the worker maps the
pages the scheduler's cache says are mapped (prism_plugins.frameworks.vllm.kv).
"""

from __future__ import annotations

import itertools

from prism_core.errors import UsageError
from prism_core.models import Device

BASE = 1 << 44  # fake addresses, far from anything this process maps


class ShadowBackend:
    """Every call succeeds and nothing is allocated; addresses and handles are counters."""

    granularity = 4096
    host_accessible = False
    export_is_fd = False  # no pages to hand another model: the process that maps them gives them back

    def __init__(self, device: Device) -> None:
        self.device = device
        self._next_addr = BASE
        self._handles = itertools.count(1)

    def reserve(self, size: int) -> int:
        addr = self._next_addr
        self._next_addr += -(-size // self.granularity) * self.granularity
        return addr

    def free(self, addr: int, size: int) -> None:
        pass

    def create(self, size: int) -> int:
        return next(self._handles)

    def release(self, handle: int) -> None:
        pass

    def map(self, addr: int, size: int, handle: int) -> None:
        pass

    def unmap(self, addr: int, size: int) -> None:
        pass

    def export(self, handle: int) -> int:
        raise UsageError(f"{self.device.id}: a shadow backend has no pages to export")

    def import_(self, shareable: int) -> int:
        raise UsageError(f"{self.device.id}: a shadow backend cannot import pages")

    def close(self) -> None:
        pass
