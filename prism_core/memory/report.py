"""What the pool and the broker report (`prism mem ls --json`, `ElasticKVCache.usage()`)."""

from __future__ import annotations

from pydantic import Field

from prism_core.models.base import Frozen


class ShareInfo(Frozen):
    """One model's line in a device's broker ledger (bytes)."""

    name: str
    pid: int
    priority: int = Field(description="higher wins; lower-priority models above their min give pages back")
    min_bytes: int = Field(description="guaranteed: the broker reclaims from others to honour it")
    max_bytes: int = Field(description="cap: never granted beyond")
    held_bytes: int = Field(description="physical memory the model holds (mapped pages and spare handles)")
    reclaim_bytes: int = Field(description="bytes the broker asks the model to give back")
    waiting_bytes: int = Field(description="bytes the model is waiting for while others give back")
    grants: int
    refusals: int
    reclaimed_bytes: int = Field(description="bytes given back on the broker's request, in total")


class LedgerInfo(Frozen):
    """A device's broker ledger."""

    device: str
    path: str
    capacity_bytes: int
    used_bytes: int
    free_bytes: int
    seq: int = Field(description="bumped on every change")
    models: list[ShareInfo]


class KvUsage(Frozen):
    """One ElasticKVCache's use of its reservation."""

    name: str
    page_size: int = Field(description="bytes of one page in one layer buffer")
    page_bytes: int = Field(description="physical bytes of one page id (all layer buffers)")
    blocks_total: int = Field(description="usable blocks in the virtual reservation")
    blocks_used: int
    blocks_free_mapped: int = Field(description="free blocks on mapped pages: allocatable with no map")
    pages_virtual: int
    pages_mapped: int
    pages_in_use: int = Field(description="mapped pages with at least one block in use")
    pages_reserved: int = Field(description="mapped pages with no block in use (pre-mapped)")
    spare_handles: int
    held_bytes: int
    limit_bytes: int | None = Field(description="local cap set by resize(); None when only the broker caps")
