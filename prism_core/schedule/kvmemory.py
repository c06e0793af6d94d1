"""KV memory in pages, as the per-device memory broker would count it, and the budget admission sees.

A request holds ceil(tokens / 16) blocks, a model holds ceil(blocks / blocks per page) pages of
`ModelSpec.page_bytes`. "elastic" memory is one pool (device memory minus resident weights) shared by the
models; "fixed" gives each model a quota (`Slot.quota_bytes`).
"""

from __future__ import annotations

import math

import numpy as np

from prism_core.schedule.catalogue import KV_BLOCK_TOKENS, DeviceSpec
from prism_core.schedule.policies import PendingRequest
from prism_core.schedule.simstate import SimRequest
from prism_core.schedule.slots import ACTIVE, MAX_BATCH, MAX_PREFILL_TOKENS, Slot


class KvMemory:
    """The memory side of an executor (a mixin: `Executor` holds the state declared here)."""

    spec: DeviceSpec
    slots: dict[int, Slot]
    clock: float
    weights: int  # bytes of resident (or activating) weights
    kv_used: int  # bytes of KV pages held

    def _free_bytes(self) -> float:
        return self.spec.memory_bytes - self.weights - self.kv_used

    def _can_ever_fit(self, slot: Slot, tokens: int) -> bool:
        pages = math.ceil(math.ceil(tokens / KV_BLOCK_TOKENS) / slot.spec.blocks_per_page)
        limit = min(slot.quota_bytes, self.spec.memory_bytes - slot.spec.weight_bytes)
        return pages * slot.spec.page_bytes <= limit

    def _fits(self, slot: Slot, extra_blocks: int, spare_pages: int = 0) -> bool:
        pages = -(-(slot.blocks + extra_blocks) // slot.spec.blocks_per_page)
        extra = (pages - slot.pages) * slot.spec.page_bytes
        if (pages + spare_pages) * slot.spec.page_bytes > slot.quota_bytes:
            return False
        if slot.quota_bytes < math.inf:
            return True
        spare = spare_pages * slot.spec.page_bytes + sum(s.spec.page_bytes for s in self.slots.values() if s.running)
        return extra + spare <= self._free_bytes() if spare_pages else extra <= 0 or self._free_bytes() >= extra

    def _room_to_start(self, slot: Slot, blocks: int) -> bool:
        """Admission keeps one spare page per busy model (and one for this one), so the batch can grow a step."""
        return self._fits(slot, blocks, spare_pages=1)

    def _fits_all(self, growth: dict[Slot, int]) -> bool:
        extra_total = 0
        for slot, blocks in growth.items():
            pages = -(-(slot.blocks + blocks) // slot.spec.blocks_per_page)
            if pages * slot.spec.page_bytes > slot.quota_bytes:
                return False
            extra_total += (pages - slot.pages) * slot.spec.page_bytes
        return extra_total <= self._free_bytes()

    def _set_blocks(self, slot: Slot, blocks: int) -> None:
        pages = -(-blocks // slot.spec.blocks_per_page)
        self.kv_used += (pages - slot.pages) * slot.spec.page_bytes
        slot.blocks = blocks
        slot.pages = pages


def growth(ctx: np.ndarray, steps: int) -> int:
    """New KV blocks a batch with these context lengths needs for `steps` more tokens each."""
    after = -(-(ctx + steps) // KV_BLOCK_TOKENS)
    before = -(-ctx // KV_BLOCK_TOKENS)
    return int((after - before).sum())


class Budget:
    """The simulator's model of the memory broker, as admission sees it for one round."""

    __slots__ = ("ex", "now_s")

    def __init__(self, ex: KvMemory) -> None:
        self.ex = ex
        self.now_s = ex.clock

    def try_admit(self, request: PendingRequest) -> bool:
        slot = self.ex.slots[request.model]
        if slot.state != ACTIVE or slot.draining or len(slot.running) >= MAX_BATCH:
            return False
        if slot.step_prefill and slot.step_prefill + request.prompt_tokens > MAX_PREFILL_TOKENS:
            return False
        blocks = -(-request.prompt_tokens // KV_BLOCK_TOKENS)
        if not self.ex._room_to_start(slot, blocks):
            return False
        self.ex._set_blocks(slot, slot.blocks + blocks)
        if isinstance(request, SimRequest):
            request.blocks = blocks
        slot.step_prefill += request.prompt_tokens
        return True
