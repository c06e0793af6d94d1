"""The KV cache of a transformers model on Prism's elastic pool: a paged `Cache` for `generate()`.

transformers' continuous-batching `PagedAttentionCache` carves one flat tensor into sectors with its own
pool, so its pages cannot be mapped on demand without rewriting its allocator; the plugin provides a cache
class instead, used through `generate(past_key_values=...)`:

- `PagedKvStore` is where blocks live: per layer one `(2, num_blocks, block_size, kv_heads, head_dim)` tensor
  and a block allocator. `PagedKvStore.elastic(...)` backs it with an `ElasticKVCache` (pages mapped on demand,
  budget granted by the device's broker); `PagedKvStore.static(...)` pre-allocates the same tensors (the
  baseline an engine without Prism would use).
- `PagedCache` is a transformers `Cache` whose layers write new tokens into the store's blocks and read a
  sequence back through its block table. Every prompt row of a `generate()` batch is one sequence.
- `install_elastic_kv(patcher, setting)` (what `PRISM_ELASTIC_KV=1` makes the adapter do) routes every plain
  `generate()` of the process through a `PagedGenerator` on a per-model elastic store: zero code change.
- `PagedGenerator.generate(...)` runs `model.generate` on a fresh `PagedCache` and turns "cannot schedule now"
  into waiting (retries while the broker's answer may change) and then preemption by recompute: the blocks
  are freed and the request runs again later. A request that can never fit is a `UsageError`, never a hang.
"""

from __future__ import annotations

import functools
import math
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from prism_core.errors import UsageError
from prism_core.memory import CannotSchedule, ElasticKVCache, KvSpec
from prism_core.settings import kv_priority

IdArray = Any  # numpy int64 block ids


class Preempted(RuntimeError):
    """Raised inside a forward when blocks stayed unavailable past the wait: the request must start again."""

    def __init__(self, answer: CannotSchedule) -> None:
        super().__init__(answer.reason)
        self.answer = answer


@dataclass(frozen=True, slots=True)
class KvGeometry:
    """The KV shape of a transformers model (from its config)."""

    num_layers: int
    kv_heads: int
    head_dim: int
    dtype: str

    @classmethod
    def of(cls, model: Any) -> KvGeometry:
        c = model.config
        heads = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        dtype = str(model.dtype).removeprefix("torch.")
        return cls(c.num_hidden_layers, heads, head_dim, dtype)

    def spec(self, block_size: int) -> KvSpec:
        return KvSpec(self.num_layers, block_size, (self.kv_heads, self.head_dim), self.dtype)


class _FreeStack:
    """The static baseline's allocator: a stack of free block ids."""

    def __init__(self, num_blocks: int) -> None:
        self._free = np.arange(num_blocks - 1, -1, -1, dtype=np.int64)
        self._top = num_blocks

    def alloc(self, n: int) -> IdArray | CannotSchedule:
        if n > self._top:
            return CannotSchedule(f"static pool: {n} blocks asked, {self._top} free", n)
        self._top -= n
        return self._free[self._top : self._top + n][::-1].copy()

    def free(self, ids: IdArray) -> None:
        self._free[self._top : self._top + len(ids)] = ids
        self._top += len(ids)


class PagedKvStore:
    """Per-layer block tensors plus their allocator: elastic (on the pool) or static (pre-allocated)."""

    def __init__(
        self,
        tensors: list[Any],
        block_size: int,
        alloc: Callable[[int], IdArray | CannotSchedule],
        free: Callable[[IdArray], None],
        cache: ElasticKVCache | None = None,
    ) -> None:
        self.tensors = tensors
        self.block_size = block_size
        self.alloc = alloc
        self.free = free
        self.cache = cache
        self.num_blocks = int(tensors[0].shape[1])

    @classmethod
    def elastic(
        cls, model: Any, num_blocks: int, *, block_size: int = 16, cache: ElasticKVCache | None = None, **options: Any
    ) -> PagedKvStore:
        """On an `ElasticKVCache`: the one given, else one for `options` (`ElasticKVCache.for_device` keywords:
        device, name, min_bytes, max_bytes, priority, page_size, min_reserved_pages...)."""
        spec = KvGeometry.of(model).spec(block_size)
        if cache is None:
            options.setdefault("reserve_null_block", False)  # sequences index their own blocks: no padding block
            cache = ElasticKVCache.for_device(spec, num_blocks, **options)
        elif cache.spec != spec:
            raise UsageError(f"the elastic cache is shaped {cache.spec}, the model needs {spec}")
        return cls(cache.tensors("kv_first"), block_size, cache.alloc, cache.free, cache)

    @classmethod
    def static(cls, model: Any, num_blocks: int, *, block_size: int = 16) -> PagedKvStore:
        """The baseline: the same tensors allocated up front (and touched, as a static pool is resident)."""
        import torch

        g = KvGeometry.of(model)
        dtype = getattr(torch, g.dtype)
        shape = (2, num_blocks, block_size, g.kv_heads, g.head_dim)
        stack = _FreeStack(num_blocks)
        return cls([torch.zeros(shape, dtype=dtype) for _ in range(g.num_layers)], block_size, stack.alloc, stack.free)

    def close(self) -> None:
        self.tensors = []
        if self.cache is not None:
            self.cache.close()
            self.cache = None


class _Sequences:
    """The block table of one generate() batch, shared by all layers (block i lies at row i of every layer)."""

    def __init__(self, store: PagedKvStore, wait_s: float) -> None:
        self.store = store
        self.wait_s = wait_s
        self.table: Any = None  # torch int64 (batch, blocks per row)
        self.length = 0  # tokens stored per row
        self.owned: list[IdArray] = []
        self.waits = 0

    def reserve(self, batch: int, tokens: int) -> None:
        """Make room for `tokens` more per row; waits, then raises Preempted, when the pool says not now."""
        import torch

        have = 0 if self.table is None else int(self.table.shape[1])
        more = math.ceil((self.length + tokens) / self.store.block_size) - have
        if more <= 0:
            return
        ids = self._alloc(batch * more)
        self.owned.append(ids)
        new = torch.from_numpy(ids).view(batch, more)
        self.table = new if self.table is None else torch.cat([self.table, new], dim=1)

    def _alloc(self, n: int) -> IdArray:
        deadline = time.monotonic() + self.wait_s
        while True:
            got = self.store.alloc(n)
            if not isinstance(got, CannotSchedule):
                return got
            self.waits += 1
            if time.monotonic() >= deadline:
                raise Preempted(got)
            time.sleep(0.005)  # the broker already waited for reclaim; let other models finish a step

    def release(self) -> None:
        for ids in self.owned:
            self.store.free(ids)
        self.owned = []
        self.table = None
        self.length = 0


def _layer_class() -> type:
    """Built on first use so importing this module does not import transformers."""
    from transformers.cache_utils import CacheLayerMixin

    class PagedLayer(CacheLayerMixin):  # type: ignore[misc]
        """One layer's K and V in the store's blocks; reads return `(batch, heads, length, head_dim)`."""

        is_sliding = False

        def __init__(self, seqs: _Sequences, buffer: Any) -> None:
            super().__init__()
            self.seqs = seqs
            self.buffer = buffer  # (2, num_blocks, block_size, heads, head_dim)
            self.length = 0

        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            self.dtype, self.device = key_states.dtype, key_states.device
            self.is_initialized = True

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            import torch

            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            seqs, bs = self.seqs, self.seqs.store.block_size
            batch, _, new, _ = key_states.shape
            if self.length == seqs.length:  # the first layer of a step makes room for all layers
                seqs.reserve(batch, new)
            pos = torch.arange(self.length, self.length + new)
            blocks = seqs.table[:, pos // bs]
            self.buffer[0][blocks, pos % bs] = key_states.transpose(1, 2)
            self.buffer[1][blocks, pos % bs] = value_states.transpose(1, 2)
            self.length += new
            seqs.length = max(seqs.length, self.length)
            used = math.ceil(self.length / bs)
            kv = self.buffer[:, seqs.table[:, :used]]  # (2, batch, used, bs, heads, dim): one gather
            kv = kv.permute(0, 1, 4, 2, 3, 5).reshape(2, batch, kv.shape[4], used * bs, kv.shape[5])
            return kv[0, :, :, : self.length], kv[1, :, :, : self.length]

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return self.length + query_length, 0

        def get_seq_length(self) -> int:
            return self.length

        def get_max_length(self) -> int:
            return -1

        def reset(self) -> None:
            self.length = 0

    return PagedLayer


_LAYER: type | None = None


def paged_cache(store: PagedKvStore, wait_s: float = 1.0) -> Any:
    """A transformers `Cache` on `store` for one generate() call; `cache.prism_release()` frees its blocks."""
    global _LAYER
    from transformers.cache_utils import Cache

    if _LAYER is None:
        _LAYER = _layer_class()
    seqs = _Sequences(store, wait_s)
    cache = Cache(layers=[_LAYER(seqs, t) for t in store.tensors])
    cache.prism_sequences = seqs
    cache.prism_release = seqs.release
    return cache


@dataclass(slots=True)
class GenerateStats:
    """What the pool did during one `PagedGenerator.generate` call."""

    waits: int = 0  # allocations that got "cannot schedule now" and were retried
    preemptions: int = 0  # times the request was dropped and recomputed


class PagedGenerator:
    """Runs `model.generate` with its KV cache in a `PagedKvStore`; never crashes on "cannot schedule now"."""

    def __init__(
        self, model: Any, store: PagedKvStore, *, wait_s: float = 1.0, backoff_s: float = 0.05, attempts: int = 100
    ) -> None:
        self.model = model
        self.store = store
        self.wait_s = wait_s
        self.backoff_s = backoff_s
        self.attempts = attempts
        self.last = GenerateStats()

    def generate(self, input_ids: Any, **kwargs: Any) -> Any:
        """`model.generate(input_ids, past_key_values=<paged cache>, **kwargs)`, with retry and preemption."""
        import torch

        rows, prompt = int(input_ids.shape[0]), int(input_ids.shape[-1])
        need = rows * math.ceil((prompt + int(kwargs.get("max_new_tokens", 20))) / self.store.block_size)
        if need > self.store.num_blocks:
            raise UsageError(f"this request needs {need} KV blocks, the store holds {self.store.num_blocks}")
        self.last = stats = GenerateStats()
        for attempt in range(self.attempts):
            cache = paged_cache(self.store, self.wait_s)
            try:
                with torch.inference_mode():
                    return self.model.generate(input_ids, past_key_values=cache, **kwargs)
            except Preempted:
                stats.preemptions += 1
                time.sleep(self.backoff_s * min(attempt + 1, 10))
            finally:
                stats.waits += cache.prism_sequences.waits
                cache.prism_release()
        raise UsageError(f"the KV pool refused this request {self.attempts} times; raise the model's budget")


DEFAULT_BLOCKS = 16_384  # virtual only: pages are mapped as blocks are used


def install_elastic_kv(patcher: Any, setting: str = "1") -> None:
    """Put the KV cache of every `generate()` call that brings no cache of its own on the elastic pool: one
    store per model, registered with the device's broker as `<model>-<pid>`. `setting` is "1" or the number of
    blocks each model's store reserves (virtual; default 16384)."""
    from transformers.generation.utils import GenerationMixin

    blocks = DEFAULT_BLOCKS if setting.strip().lower() in ("1", "true", "yes", "on") else int(setting)
    if blocks < 1:
        raise UsageError(f"PRISM_ELASTIC_KV must be 1 or a positive block count, got {setting!r}")
    priority = kv_priority()
    stores: dict[int, PagedKvStore] = {}

    def store_for(model: Any) -> PagedKvStore:
        store = stores.get(id(model))
        if store is None:
            name = f"{getattr(model.config, '_name_or_path', '') or type(model).__name__}"[-30:]
            store = PagedKvStore.elastic(model, blocks, name=f"{name}-{os.getpid()}", priority=priority)
            stores[id(model)] = store
            weakref.finalize(model, _close_store, stores, id(model))
        return store

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def generate(model: Any, *args: Any, **kwargs: Any) -> Any:
            plain = kwargs.get("past_key_values") is None and kwargs.get("use_cache", True) is not False
            ids = args[0] if args else kwargs.get("input_ids")
            if not plain or ids is None or len(args) > 1:
                return original(model, *args, **kwargs)
            kwargs.pop("input_ids", None)
            return PagedGenerator(model, store_for(model)).generate(ids, **kwargs)

        return generate

    if not getattr(GenerationMixin.generate, "prism_kv", False):  # idempotent (wraps() copies the mark)
        patcher.wrap(GenerationMixin, "generate", wrap)
        GenerationMixin.generate.prism_kv = True


def _close_store(stores: dict[int, PagedKvStore], key: int) -> None:
    store = stores.pop(key, None)
    if store is not None:
        store.close()
