"""SGLang's KV cache on Prism's elastic pool (`PRISM_ELASTIC_KV=1` under `prism run`): pages mapped on demand, one
budget per device.

Written from SGLang's source (0.4-0.5); SGLang has no CPU build, so this is tested against a stand-in that calls
the pool as SGLang's scheduler does (`prism_core.testing.sglang_memory`), and against the real engine under `gpu`.

- **KV buffers.** `MHATokenToKVPool` becomes a subclass whose `_create_buffers` lays every layer's K and V buffer,
  `(size + 1, heads, head_dim)` as SGLang indexes them, over an `ElasticKVCache` reservation: one block per token
  slot, slot 0 (SGLang's padding slot) the pool's null block. Only slot 0's page is mapped at start.
- **Slots.** `TokenToKVPoolAllocator` becomes a subclass that hands SGLang only slots on mapped, granted pages.
  SGLang decides what to admit and whether to preempt from `available_size()`, then calls `alloc` as if it cannot
  fail (a failed alloc raises "out of memory"). So inside a scheduler pass (`Scheduler.get_next_batch_to_run`,
  where SGLang admits, retracts and allocates) `available_size()` is the slots already secured. Each pass starts
  by securing what it can use, as SGLang itself estimates it: the running requests' next tokens (waiting up to
  `WAIT_S` for lower-priority models to give back, before SGLang would preempt), their reserved outputs, and the
  waiting requests up to SGLang's prefill budget (asked without waiting). What the broker does not grant makes
  SGLang admit fewer requests, or retract decoding ones, exactly as when its static pool is full. Outside a pass
  (the idle leak check, metrics) `available_size()` is SGLang's own count: the pool size minus the slots held.
- **Giving back.** Secured slots SGLang did not take go back to the cache when the scheduler is idle or the
  broker asks this model to give back; the cache then unmaps the pages that emptied. While an ask stands, each
  pass also evicts that much of SGLang's prefix cache, whose cached KV would otherwise pin its pages.
- **Limits.** SGLang's MHA pool with a page size of 1 on one rank: other pools (MLA, SWA, hybrid, paged
  allocators, disaggregation's sorted free lists, tensor parallelism, whose ranks must schedule alike) say so in
  one line and stay static. Speculative decoding allocates outside the pass and is not supported.
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import sys
from typing import Any

import numpy as np

from prism_core.capture.patching import Patcher
from prism_core.memory import CannotSchedule, ElasticKVCache, KvSpec
from prism_core.memory.spec import DEFAULT_PAGE_SIZE, DTYPE_BYTES, MIB
from prism_core.memory.torch_device import prism_device

MEMORY_MODULES = (  # where SGLang's model runner builds its pools (the second from 0.5 on)
    "sglang.srt.model_executor.model_runner",
    "sglang.srt.model_executor.model_runner_kv_cache_mixin",
)
CLIP_MAX_NEW_TOKENS = 4096  # SGLang's default SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION
DEFAULT_PREFILL_BUDGET = 16384  # SGLang's default --max-prefill-tokens
WAIT_S = 0.2
GRAIN = 4096  # slots secured at once where mapped pages have them
MAX_PAGE = 64 * MIB


class ElasticSglang:
    """The patches (on the SGLang adapter's patcher, so they are undone with it) and the caches they made."""

    def __init__(self, patcher: Patcher, priority: int = 0) -> None:
        self._patcher = patcher
        self.priority = priority
        self.caches: list[ElasticKVCache] = []
        self._said: set[str] = set()

    def patch_module(self, module: Any) -> None:
        """Swap the pool classes where the model runner looks them up."""
        for attr, mixin in (("MHATokenToKVPool", ElasticBuffers), ("TokenToKVPoolAllocator", ElasticSlots)):
            if hasattr(module, attr) and not self._patcher.is_patched(module, attr):
                self._patcher.wrap(module, attr, functools.partial(_subclass, mixin, self))

    def patch_scheduler(self, scheduler_cls: type) -> None:
        if not self._patcher.is_patched(scheduler_cls, "get_next_batch_to_run"):
            self._patcher.wrap(scheduler_cls, "get_next_batch_to_run", _wrap_pass)

    def say(self, line: str) -> None:
        if line not in self._said:
            self._said.add(line)
            sys.stderr.write(f"prism: elastic KV: {line}\n")

    def reserve(self, pool: Any) -> ElasticKVCache | None:
        """The reservation behind `pool`'s buffers, or None (said why) when this pool stays static."""
        dtype = str(pool.store_dtype).removeprefix("torch.")
        why = _unsupported(pool, dtype)
        if why:
            self.say(f"{why}; the KV cache stays static")
            return None
        spec = KvSpec(pool.layer_num, 1, (pool.head_num, pool.head_dim), dtype, kv_buffers=2)
        page = math.lcm(spec.block_bytes, DEFAULT_PAGE_SIZE)  # no token slot straddles two pages
        if page > MAX_PAGE:
            self.say(f"a token of {spec.block_bytes} bytes needs pages of {page} bytes; the KV cache stays static")
            return None
        name = f"sglang-{os.getpid()}"
        cache = ElasticKVCache.for_device(
            spec, pool.size + 1, device=prism_device(pool.device), name=name, page_size=page, priority=self.priority
        )
        atexit.register(cache.close)
        self.caches.append(cache)
        self.say(f"{name}: {pool.size} token slots of {spec.block_bytes * spec.buffers} bytes (all layers) reserved")
        return cache


def _unsupported(pool: Any, dtype: str) -> str | None:
    if pool.page_size != 1:
        return f"SGLang's page size is {pool.page_size} (only 1 is supported)"
    if getattr(pool, "v_head_dim", pool.head_dim) != pool.head_dim:
        return "K and V head sizes differ"
    if dtype not in DTYPE_BYTES:
        return f"KV dtype {dtype} is not one the pool knows"
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return "tensor parallel ranks must schedule alike, and each rank's pool would be granted differently"
    return None


def _subclass(mixin: type, owner: ElasticSglang, base: type) -> type:
    """A subclass of the running SGLang's class (built when SGLang is imported, not at Prism's import)."""
    return type(base.__name__, (mixin, base), {"_elastic": owner, "_static": base})


class ElasticBuffers:
    """Mixed into SGLang's `MHATokenToKVPool`: the layer buffers are views over a reservation."""

    _elastic: ElasticSglang
    prism_cache: ElasticKVCache | None = None

    def _create_buffers(self) -> None:
        pool: Any = self
        cache = self._elastic.reserve(pool)
        if cache is None:
            super()._create_buffers()  # type: ignore[misc]
            return
        self.prism_cache = cache
        shape = (pool.size + 1, pool.head_num, pool.head_dim)
        layers = cache.tensors("separate")
        pool.k_buffer = [k.view(shape) for k, _ in layers]
        pool.v_buffer = [v.view(shape) for _, v in layers]


class ElasticSlots:
    """Mixed into SGLang's `TokenToKVPoolAllocator`: slots come from the pool's `ElasticKVCache`.

    `_slots` (a device tensor, never mutated in place) are secured and not handed out; `_taken` marks every slot
    taken from the cache, handed out or not, and `_n_taken` counts them."""

    _static: type
    size: int
    device: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        cache = getattr(kwargs.get("kvcache"), "prism_cache", None)
        if cache is None or kwargs.get("need_sort"):  # a static pool, or disaggregation's sorted free lists
            return cls._static(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import torch

        cache: ElasticKVCache = kwargs["kvcache"].prism_cache
        self.prism_cache = cache
        self._taken = np.zeros(cache.table.num_blocks, dtype=bool)
        self._n_taken = 0
        self._slots = torch.empty(0, dtype=torch.int64)
        self._group: list[Any] | None = None
        self._in_pass = False
        super().__init__(*args, **kwargs)  # sets size and device, and calls clear()
        self._slots = self._slots.to(self.device)

    # SGLang's allocator API ---------------------------------------------------------------------------------

    def available_size(self) -> int:
        secured = int(self._slots.numel())
        return secured if self._in_pass else self.size - (self._n_taken - secured)

    def alloc(self, need_size: int) -> Any:
        if need_size > self._slots.numel():
            self._secure(need_size - int(self._slots.numel()), wait_s=0)
        if need_size > self._slots.numel():
            return None  # SGLang's own "no room"
        out, self._slots = self._slots[:need_size], self._slots[need_size:]
        return out

    def free(self, free_index: Any) -> None:
        import torch

        if free_index.numel() == 0:
            return
        if self._group is not None:
            self._group.append(free_index)
        else:
            self._slots = torch.cat((self._slots, free_index.to(torch.int64)))

    def free_group_begin(self) -> None:
        self._group = []

    def free_group_end(self) -> None:
        import torch

        group, self._group = self._group, None
        if group:
            self.free(torch.cat(group))

    def backup_state(self) -> Any:
        return self._slots

    def restore_state(self, state: Any) -> None:
        self._slots = state

    def clear(self) -> None:
        """Every slot free again (SGLang flushes its cache only with nothing running): all go back to the cache."""
        import torch

        taken = np.flatnonzero(self._taken)
        self._taken[:] = False
        self._n_taken = 0
        self._slots = torch.empty(0, dtype=torch.int64, device=self._slots.device)
        self.prism_cache.free(taken)

    # The scheduler pass -------------------------------------------------------------------------------------

    def begin_pass(self, urgent: int, wanted: int) -> None:
        """Secure `urgent` slots (waiting for lower-priority models to give back), then up to `wanted`."""
        self._in_pass = True
        self._secure(urgent - int(self._slots.numel()), wait_s=WAIT_S)
        self._secure(wanted - int(self._slots.numel()), wait_s=0)

    def end_pass(self, idle: bool, tree_cache: Any = None) -> None:
        """Give secured slots back when idle or asked; when asked, also evict that much of SGLang's prefix cache,
        whose cached KV would otherwise pin its pages (a standing ask evicts more on each pass)."""
        self._in_pass = False
        member = self.prism_cache.member
        asked = member.reclaim_requested() if member is not None else 0
        if asked and tree_cache is not None:
            spec = self.prism_cache.spec
            evict_cached(tree_cache, -(-asked // (spec.block_bytes * spec.buffers)))  # frees into _slots
        if self._slots.numel() and (idle or asked):
            import torch

            ids = self._slots.cpu().numpy()
            self._slots = torch.empty(0, dtype=torch.int64, device=self._slots.device)
            self._taken[ids] = False
            self._n_taken -= ids.size
            self.prism_cache.free(ids)

    def _secure(self, n: int, wait_s: float) -> None:
        import torch

        if n <= 0:
            return
        cache = self.prism_cache
        # Round up within pages already mapped (no broker asked): not one cache call per decode pass.
        n = min(max(n, min(GRAIN, cache.available_blocks())), cache.unused_blocks())
        ids = cache.alloc(n, wait_s=wait_s)
        if isinstance(ids, CannotSchedule):  # what is on pages already mapped needs no grant
            ids = cache.alloc(min(n, cache.available_blocks()))
            if isinstance(ids, CannotSchedule) or ids.size == 0:
                return
        self._taken[ids] = True
        self._n_taken += ids.size
        self._slots = torch.cat((self._slots, torch.from_numpy(ids).to(self._slots.device)))


def evict_cached(tree_cache: Any, tokens: int) -> None:
    """Ask SGLang's prefix cache to drop `tokens` of unused cached KV: its `evict` takes a token count in older
    releases and an `EvictParams(num_tokens=...)`, defined beside the cache class, in newer ones."""
    params = getattr(sys.modules.get(type(tree_cache).__module__), "EvictParams", None)
    tree_cache.evict(params(num_tokens=tokens) if params is not None else tokens)


def pass_demand(scheduler: Any) -> tuple[int, int]:
    """(slots the running requests' next step needs, slots this pass could use), estimated as SGLang's own
    admission does: outputs clipped and scaled by its `new_token_ratio`, waiting requests up to its prefill budget.
    With nobody waiting a pass only decodes, and the estimate costs nothing per running request."""
    running = getattr(getattr(scheduler, "running_batch", None), "reqs", None) or ()
    urgent = len(running)
    chunked = getattr(scheduler, "chunked_req", None)
    waiting = ([chunked] if chunked is not None else []) + list(getattr(scheduler, "waiting_queue", ()))
    if not waiting:
        return urgent, urgent
    ratio = float(getattr(scheduler, "new_token_ratio", 1.0) or 1.0)
    wanted = urgent + sum(_reserved(r, ratio) for r in running)
    budget = int(getattr(scheduler, "max_prefill_tokens", 0) or DEFAULT_PREFILL_BUDGET)
    admitted = 0
    for req in waiting:
        tokens = len(req.origin_input_ids) + len(req.output_ids)
        if admitted and admitted + tokens > budget:
            break
        admitted += tokens
        wanted += tokens + _reserved(req, ratio)
    return urgent, wanted


def _reserved(req: Any, ratio: float) -> int:
    limit = getattr(getattr(req, "sampling_params", None), "max_new_tokens", None) or CLIP_MAX_NEW_TOKENS
    return math.ceil(min(max(limit - len(req.output_ids), 0), CLIP_MAX_NEW_TOKENS) * ratio)


def _wrap_pass(original: Any) -> Any:
    @functools.wraps(original)
    def get_next_batch_to_run(scheduler: Any, *args: Any, **kwargs: Any) -> Any:
        slots = getattr(scheduler, "token_to_kv_pool_allocator", None)
        if not isinstance(slots, ElasticSlots):
            return original(scheduler, *args, **kwargs)
        slots.begin_pass(*pass_demand(scheduler))
        result = None
        try:
            result = original(scheduler, *args, **kwargs)
            return result
        finally:
            batch = getattr(result, "batch_to_run", result)  # newer SGLang returns a plan object
            idle = not batch and not getattr(scheduler, "waiting_queue", None)
            slots.end_pass(idle, getattr(scheduler, "tree_cache", None))

    return get_next_batch_to_run
