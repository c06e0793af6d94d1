"""The measurements behind `prism bench memory`: page map/unmap, block throughput, cross-process reclaim.

Each function measures one thing on the given backend or device and returns plain numbers; nothing here
asserts a target (this machine is noisy), the report prints what was measured.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from prism_core.memory.cache import ElasticKVCache
from prism_core.memory.handles import HandlePool
from prism_core.memory.results import CannotSchedule
from prism_core.memory.spec import DEFAULT_PAGE_SIZE, KvSpec
from prism_core.memory.vmm import VmmBackend
from prism_core.memory.workers import ModelConfig, ModelProcess

GIB = 2**30


def _pct(samples_ns: list[int], q: float) -> float:
    return round(float(np.percentile(np.asarray(samples_ns), q)) / 1e3, 2)


def page_map_unmap(backend: VmmBackend, pages: int = 256, page_size: int = DEFAULT_PAGE_SIZE) -> dict[str, float]:
    """Per-page map (with a pre-created handle, and with a create on every map) and unmap, in microseconds."""
    addr = backend.reserve(pages * page_size)
    pool = HandlePool(backend, page_size, keep=pages)
    try:
        pool.fill(pages)
        handles = pool.take(pages)
        map_ns, unmap_ns, create_map_ns = [], [], []
        for i, h in enumerate(handles):
            t0 = time.perf_counter_ns()
            backend.map(addr + i * page_size, page_size, h)
            map_ns.append(time.perf_counter_ns() - t0)
        for i in range(pages):
            t0 = time.perf_counter_ns()
            backend.unmap(addr + i * page_size, page_size)
            unmap_ns.append(time.perf_counter_ns() - t0)
        pool.give(handles)
        pool.shed(pool.spare)
        for i in range(pages):
            t0 = time.perf_counter_ns()
            h = backend.create(page_size)
            backend.map(addr + i * page_size, page_size, h)
            create_map_ns.append(time.perf_counter_ns() - t0)
            backend.unmap(addr + i * page_size, page_size)
            backend.release(h)
    finally:
        pool.shed(pool.spare)
        backend.free(addr, pages * page_size)
    return {
        "page_size": page_size,
        "map_us_p50": _pct(map_ns, 50),
        "map_us_p99": _pct(map_ns, 99),
        "unmap_us_p50": _pct(unmap_ns, 50),
        "unmap_us_p99": _pct(unmap_ns, 99),
        "map_with_create_us_p50": _pct(create_map_ns, 50),
        "map_with_create_us_p99": _pct(create_map_ns, 99),
    }


def block_throughput(backend: VmmBackend, batch: int = 256, seconds: float = 1.0) -> dict[str, float]:
    """Blocks per second through alloc + free of `batch` blocks, all pages already mapped."""
    spec = KvSpec(num_layers=4, block_size=16, token_shape=(8, 64), dtype="float16")  # 16 KiB blocks
    blocks = 16 * 1024
    with ElasticKVCache(spec, blocks, backend=backend, max_reserved_pages=blocks, background=False) as cache:
        warm = cache.alloc(blocks - 1)
        assert not isinstance(warm, CannotSchedule)
        cache.free(warm)
        done = 0
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            ids = cache.alloc(batch)
            assert not isinstance(ids, CannotSchedule)
            cache.free(ids)
            done += batch
    return {"alloc_batch": batch, "alloc_blocks_per_s": round(done / elapsed)}


def reclaim(device: str = "cpu:0", nbytes: int = GIB, rounds: int = 3) -> dict[str, float]:
    """Time for a busy high-priority model process to get `nbytes` that an idle low-priority one holds
    (resident: it wrote them) through the broker, from its request to the pages mapped in its range: with the
    idle model's pages handed over (the default) and, side by side, freed and created anew (`donate=False`).
    Also the cost of first use after that (one write per OS page), which differs between the two."""
    spec = KvSpec(num_layers=1, block_size=16, token_shape=(8, 128), dtype="float16")  # 32 KiB blocks, 2 buffers
    page_id = DEFAULT_PAGE_SIZE * spec.buffers
    pages = nbytes // page_id
    per_page = DEFAULT_PAGE_SIZE // spec.block_bytes
    times: dict[str, list[float]] = {"moved": [], "fresh": [], "moved_touch": [], "fresh_touch": []}
    with tempfile.TemporaryDirectory(prefix="prism-bench-") as directory:
        capacity = (pages + 2) * page_id  # both null pages, and `nbytes` once

        def config(name: str, priority: int, donate: bool) -> ModelConfig:
            options = {"max_reserved_pages": pages + 1, "acquire_timeout_s": 5.0, "donate": donate}
            blocks = (pages + 1) * per_page
            return ModelConfig(
                name,
                directory,
                capacity,
                spec,
                blocks,
                DEFAULT_PAGE_SIZE,
                priority=priority,
                options=options,
                device=device,
            )

        for way in ("moved", "fresh"):
            idle = ModelProcess(config(f"idle-{way}", 0, way == "moved"))
            busy = ModelProcess(config(f"busy-{way}", 1, True))
            try:
                for _ in range(rounds):
                    _ok(idle.alloc(pages * per_page))
                    idle.call("touch")
                    idle.free()  # idle now: its pages stay mapped and resident
                    times[way].append(_ok(busy.alloc(pages * per_page)) * 1e3)
                    times[f"{way}_touch"].append(_ok(busy.call("fault")) * 1e3)
                    busy.free()
                    busy.call("trim")
            finally:
                idle.stop()
                busy.stop()
    key = "reclaim_1gib" if nbytes == GIB else "reclaim"
    med = {k: round(float(np.median(v)), 2) for k, v in times.items()}
    return {
        "reclaim_bytes": nbytes,
        "reclaim_rounds": rounds,
        f"{key}_ms": med["moved"],
        f"{key}_first_touch_ms": med["moved_touch"],
        f"{key}_fresh_ms": med["fresh"],
        f"{key}_fresh_first_touch_ms": med["fresh_touch"],
    }


def _ok(answer: tuple[str, Any, float]) -> float:
    status, detail, seconds = answer
    if status != "ok":
        raise RuntimeError(f"benchmark model was refused: {detail}")
    return seconds


def memory(backend_factory: Callable[[], VmmBackend], device: str, quick: bool = False) -> dict[str, Any]:
    """Every memory figure for one device; `quick` shrinks the sizes (tests, smoke runs)."""
    backend = backend_factory()
    try:
        out: dict[str, Any] = {"device": device, "backend": type(backend).__name__}
        out.update(page_map_unmap(backend, pages=16 if quick else 256))
        out.update(block_throughput(backend, seconds=0.2 if quick else 1.0))
    finally:
        backend.close()
    out.update(reclaim(device, nbytes=64 * 2**20 if quick else GIB, rounds=1 if quick else 3))
    if device.startswith("cpu"):
        from prism_core.memory.engine_bench import alternating_bursts, tokens_ratio

        if quick:
            out.update(tokens_ratio(rounds=1, rows=2, length=16, new=8))
            out.update(alternating_bursts(bursts=1, sizes=(4, 2), new=4))
        else:
            out.update(tokens_ratio(rounds=10))
            out.update(alternating_bursts(bursts=3))
    else:
        out["elastic_vs_static_tokens_ratio"] = None
        out["elastic_vs_static_tokens_ratio_reason"] = "the engine comparison runs the CPU tiny Llama; cpu devices only"
    return out
