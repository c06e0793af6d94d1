"""A stand-in for SGLang's KV pools and for the scheduler code that calls them (SGLang has no CPU build).

`MHATokenToKVPool` and `TokenToKVPoolAllocator` keep SGLang's constructor keywords, buffer shapes and free-list
behaviour (python/sglang/srt/mem_cache/memory_pool.py and allocator.py, 0.4-0.5): slot 0 is padding and never
handed out, `alloc` returns None when the free list is short, frees can be grouped. `model_runner_module()` is a
module named like SGLang's, and `init_memory_pool(module, ...)` looks both classes up on it when called, as
SGLang's model runner resolves its globals, so Prism patches it the same way.

`PooledScheduler` calls the allocator as SGLang's scheduler does: a new prefill batch is admitted from
`available_size()` less the outputs reserved for running requests (clipped, scaled by `new_token_ratio`: SGLang's
PrefillAdder), within a prefill token budget; a decode step checks `available_size()` and retracts the newest
request (freeing its KV, to be prefilled again with its outputs) until the step fits; `alloc` is taken as
infallible (None raises SGLang's "out of memory" error); finished requests are freed in a group; an idle pass runs
SGLang's leak check. With `radix_cache`, finished requests' KV stays cached and evictable, as in SGLang's prefix
cache (without prefix matching): counted as room at admission, evicted when an allocation or a decode step is
short. Its "model" writes every token's K and V, reads back the whole sequence and checks it, and samples a token
from what it read, so a lost or overwritten slot fails the run and changes the tokens.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from prism_core.testing.sglang_loop import FinishLength, ForwardMode, Req, ScheduleBatch

CLIP_MAX_NEW_TOKENS = 4096


class MHATokenToKVPool:
    def __init__(
        self,
        size: int,
        page_size: int,
        dtype: Any,
        head_num: int,
        head_dim: int,
        layer_num: int,
        device: str,
        enable_memory_saver: bool = False,
        start_layer: int | None = None,
        end_layer: int | None = None,
    ) -> None:
        self.size, self.page_size, self.dtype, self.store_dtype = size, page_size, dtype, dtype
        self.head_num, self.head_dim, self.layer_num, self.device = head_num, head_dim, layer_num, device
        self._create_buffers()

    def _create_buffers(self) -> None:
        import torch

        shape = (self.size + self.page_size, self.head_num, self.head_dim)
        self.k_buffer = [torch.zeros(shape, dtype=self.store_dtype, device=self.device) for _ in range(self.layer_num)]
        self.v_buffer = [torch.zeros(shape, dtype=self.store_dtype, device=self.device) for _ in range(self.layer_num)]


class TokenToKVPoolAllocator:
    def __init__(self, size: int, dtype: Any, device: str, kvcache: MHATokenToKVPool, need_sort: bool = False) -> None:
        self.size, self.page_size, self.dtype, self.device = size, 1, dtype, device
        self._kvcache, self.need_sort = kvcache, need_sort
        self.clear()

    def clear(self) -> None:
        import torch

        self.free_pages = torch.arange(1, self.size + 1, dtype=torch.int64, device=self.device)
        self.free_group: list[Any] | None = None

    def available_size(self) -> int:
        return len(self.free_pages)

    def alloc(self, need_size: int) -> Any:
        if need_size > len(self.free_pages):
            return None
        out, self.free_pages = self.free_pages[:need_size], self.free_pages[need_size:]
        return out

    def free(self, free_index: Any) -> None:
        import torch

        if free_index.numel() == 0:
            return
        if self.free_group is not None:
            self.free_group.append(free_index)
        else:
            self.free_pages = torch.cat((self.free_pages, free_index))

    def free_group_begin(self) -> None:
        self.free_group = []

    def free_group_end(self) -> None:
        import torch

        group, self.free_group = self.free_group, None
        if group:
            self.free(torch.cat(group))

    def get_kvcache(self) -> MHATokenToKVPool:
        return self._kvcache


def model_runner_module() -> ModuleType:
    module = ModuleType("sglang.srt.model_executor.model_runner")
    module.MHATokenToKVPool = MHATokenToKVPool  # type: ignore[attr-defined]
    module.TokenToKVPoolAllocator = TokenToKVPoolAllocator  # type: ignore[attr-defined]
    return module


@dataclass(frozen=True)
class Shape:
    """The model's KV geometry: 8 heads of 64 float32 are 2 KiB per token and buffer, 1,024 tokens a 2 MiB page."""

    layers: int = 2
    heads: int = 8
    head_dim: int = 64
    dtype: str = "float32"


def init_memory_pool(module: ModuleType, size: int, shape: Shape = Shape(), *, need_sort: bool = False) -> Any:
    """What SGLang's `ModelRunner.init_memory_pool` does for an MHA model with page size 1: the allocator."""
    import torch

    dtype = getattr(torch, shape.dtype)
    pool = module.MHATokenToKVPool(
        size,
        page_size=1,
        dtype=dtype,
        head_num=shape.heads,
        head_dim=shape.head_dim,
        layer_num=shape.layers,
        device="cpu",
        enable_memory_saver=False,
    )
    return module.TokenToKVPoolAllocator(size, dtype=dtype, device="cpu", kvcache=pool, need_sort=need_sort)


class RadixCache:
    """What SGLang's prefix cache does to memory (no prefix matching): a finished request's KV stays cached,
    evictable, until `evict(num_tokens)` frees the least recently cached entries, at least `num_tokens` slots."""

    def __init__(self, allocator: Any) -> None:
        self.allocator = allocator
        self.entries: OrderedDict[str, Any] = OrderedDict()

    def insert(self, rid: str, slots: Any) -> None:
        self.entries[rid] = slots

    def evictable_size(self) -> int:
        return sum(int(v.numel()) for v in self.entries.values())

    def protected_size(self) -> int:
        return 0

    def evict(self, num_tokens: int) -> None:
        freed = 0
        while freed < num_tokens and self.entries:
            _, slots = self.entries.popitem(last=False)
            self.allocator.free(slots)
            freed += int(slots.numel())


class PooledScheduler:
    def __init__(
        self,
        waiting: list[Req],
        allocator: Any,
        *,
        max_prefill_tokens: int = 512,
        new_token_ratio: float = 0.5,
        radix_cache: bool = False,
    ) -> None:
        self.tree_cache = RadixCache(allocator) if radix_cache else None
        self.waiting_queue = list(waiting)
        self.running_batch = ScheduleBatch([], ForwardMode("decode"), 0, 0)
        self.token_to_kv_pool_allocator = allocator
        self.max_total_num_tokens = allocator.size
        self.max_prefill_tokens = max_prefill_tokens
        self.new_token_ratio = new_token_ratio
        self.chunked_req = None
        self.req_to_token: dict[str, Any] = {}  # rid -> KV slots of its sequence, in order
        self.retractions = 0
        self.idle_passes = 0
        self.peak_running = 0

    # The scheduler's calls into the pool, in SGLang's order ----------------------------------------------

    def get_next_batch_to_run(self) -> ScheduleBatch | None:
        return self._new_prefill() or self._update_running()

    def _reserved(self, req: Req) -> int:
        left = min(req.max_new_tokens - len(req.output_ids), CLIP_MAX_NEW_TOKENS)
        return int(left * self.new_token_ratio)

    def _new_prefill(self) -> ScheduleBatch | None:
        allocator = self.token_to_kv_pool_allocator
        room = allocator.available_size() + self._evictable() - sum(self._reserved(r) for r in self.running_batch.reqs)
        admitted: list[Req] = []
        tokens = 0
        for req in self.waiting_queue:
            need = len(req.origin_input_ids) + len(req.output_ids)
            if need + self._reserved(req) > room or (tokens and tokens + need > self.max_prefill_tokens):
                break
            room -= need + self._reserved(req)
            tokens += need
            admitted.append(req)
        if not admitted:
            return None
        self.waiting_queue = self.waiting_queue[len(admitted) :]
        loc = self._alloc_token_slots(tokens)
        if loc is None:
            raise RuntimeError("Prefill out of memory. Try to lower your batch size.")
        start = 0
        for req in admitted:
            n = len(req.origin_input_ids) + len(req.output_ids)
            self.req_to_token[req.rid] = loc[start : start + n]
            start += n
        return ScheduleBatch(admitted, ForwardMode("extend"), tokens, tokens)

    def _update_running(self) -> ScheduleBatch | None:
        import torch

        batch = self.running_batch
        if not batch.reqs:
            return None
        allocator = self.token_to_kv_pool_allocator
        if self.tree_cache is not None and allocator.available_size() < len(batch.reqs):  # check_decode_mem
            self.tree_cache.evict(len(batch.reqs))
        while allocator.available_size() < len(batch.reqs):  # then retract_decode
            assert len(batch.reqs) > 1 and allocator.available_size() >= 0, "No space left for only one request"
            req = batch.reqs.pop()
            allocator.free(self.req_to_token.pop(req.rid))
            self.waiting_queue.insert(0, req)
            self.retractions += 1
        loc = self._alloc_token_slots(len(batch.reqs))
        if loc is None:
            raise RuntimeError("Decode out of memory. Try to lower your batch size.")
        for i, req in enumerate(batch.reqs):
            self.req_to_token[req.rid] = torch.cat((self.req_to_token[req.rid], loc[i : i + 1]))
        kv = sum(len(r.origin_input_ids) + len(r.output_ids) + 1 for r in batch.reqs)
        return ScheduleBatch(list(batch.reqs), ForwardMode("decode"), 0, kv)

    def _evictable(self) -> int:
        return self.tree_cache.evictable_size() if self.tree_cache is not None else 0

    def _alloc_token_slots(self, n: int) -> Any:
        allocator = self.token_to_kv_pool_allocator
        if self.tree_cache is not None and allocator.available_size() < n:
            self.tree_cache.evict(n)
        return allocator.alloc(n)

    def run_batch(self, batch: ScheduleBatch) -> list[int]:
        pool = self.token_to_kv_pool_allocator.get_kvcache()
        tokens = []
        for req in batch.reqs:
            seq = req.origin_input_ids + req.output_ids
            slots = self.req_to_token[req.rid]
            new = range(len(seq)) if batch.forward_mode.name == "extend" else range(len(seq) - 1, len(seq))
            for layer in range(pool.layer_num):
                for pos in new:
                    pool.k_buffer[layer][slots[pos]] = _kv(seq[pos], pos, layer)
                    pool.v_buffer[layer][slots[pos]] = -_kv(seq[pos], pos, layer)
            read = sum(
                float(pool.k_buffer[layer][slots].sum() - pool.v_buffer[layer][slots].sum())
                for layer in range(pool.layer_num)
            )
            expected = sum(
                2 * _kv(t, pos, layer) * pool.head_num * pool.head_dim
                for pos, t in enumerate(seq)
                for layer in range(pool.layer_num)
            )
            if read != expected:
                raise AssertionError(f"{req.rid}: KV read back {read}, written {expected}")
            tokens.append(int(read) % 1000)
        return tokens

    def process_batch_result(self, batch: ScheduleBatch, result: list[int]) -> None:
        allocator = self.token_to_kv_pool_allocator
        allocator.free_group_begin()
        for req, token in zip(batch.reqs, result, strict=True):
            req.output_ids.append(token)
            if len(req.output_ids) >= req.max_new_tokens:
                req.finished_reason = FinishLength(len(req.output_ids))
                slots = self.req_to_token.pop(req.rid)
                if self.tree_cache is not None:
                    self.tree_cache.insert(req.rid, slots)
                else:
                    allocator.free(slots)
            elif batch.forward_mode.name == "extend":
                self.running_batch.reqs.append(req)
        self.running_batch.reqs = [r for r in self.running_batch.reqs if not r.finished()]
        self.peak_running = max(self.peak_running, len(self.running_batch.reqs))
        allocator.free_group_end()

    def check_memory(self) -> None:
        available = self.token_to_kv_pool_allocator.available_size()
        if available + self._evictable() != self.max_total_num_tokens:
            raise ValueError(f"token_to_kv_pool_allocator memory leak detected! {available=}")

    def event_loop_normal(self, timeout_s: float = 60.0) -> None:
        """Until every request finished; an idle pass (waiting for memory, or done) runs the leak check."""
        deadline = time.monotonic() + timeout_s
        while True:
            batch = self.get_next_batch_to_run()
            if batch:
                self.process_batch_result(batch, self.run_batch(batch))
                continue
            self.idle_passes += 1
            if not self.waiting_queue and not self.running_batch.reqs:
                self.check_memory()
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.waiting_queue)} requests never admitted")
            time.sleep(0.001)

    def serve(self, stop: threading.Event) -> None:
        """SGLang's busy loop, idle or not, until `stop`."""
        while not stop.is_set():
            batch = self.get_next_batch_to_run()
            if batch:
                self.process_batch_result(batch, self.run_batch(batch))
            else:
                time.sleep(0.001)


def _kv(token: int, pos: int, layer: int) -> float:
    return float(token % 31 + pos % 13 + layer + 1)  # small integers: float32 sums stay exact
