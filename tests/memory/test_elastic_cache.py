"""ElasticKVCache on the real cpu backend: views, best-fit blocks, on-demand maps, ballooning, bad input."""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Iterator

import numpy as np
import pytest

from prism_core.errors import UsageError
from prism_core.memory import BlockTable, CannotSchedule, ElasticKVCache, KvSpec
from prism_plugins.cpu.host import cpu_device
from prism_plugins.cpu.vmm import CpuVmm

PAGE = 64 * 1024
SPEC = KvSpec(num_layers=2, block_size=4, token_shape=(2, 16), dtype="float32")  # 512-byte blocks


@pytest.fixture
def vmm() -> Iterator[CpuVmm]:
    backend = CpuVmm(cpu_device())
    yield backend
    backend.close()


def make(vmm: CpuVmm, num_blocks: int = 1024, **options: object) -> ElasticKVCache:
    return ElasticKVCache(SPEC, num_blocks, backend=vmm, page_size=PAGE, **options)  # type: ignore[arg-type]


def test_views_have_engine_shapes_and_stable_addresses(vmm: CpuVmm) -> None:
    torch = pytest.importorskip("torch")
    with make(vmm) as cache:
        (layer0, layer1) = cache.tensors("kv_first")
        assert layer0.shape == (2, 1024, 4, 2, 16) and layer0.dtype == torch.float32
        k, v = cache.tensors("separate")[1]
        assert k.shape == (1024, 4, 2, 16)
        blocks_first = cache.tensors("blocks_first")[0]
        assert blocks_first.shape == (1024, 2, 4, 2, 16)
        ptr = layer0.data_ptr()
        ids = cache.alloc(300)
        assert not isinstance(ids, CannotSchedule)
        idx = torch.as_tensor(ids)
        layer1[1, idx] = 7.0  # V of layer 1
        assert float(v[idx].sum()) == 7.0 * 300 * 4 * 2 * 16
        assert float(blocks_first[idx, 0].sum()) == 0.0  # K of layer 0 untouched
        cache.free(ids)
        cache.trim()
        again = cache.alloc(300)
        assert not isinstance(again, CannotSchedule)
        assert cache.tensors()[0].data_ptr() == ptr, "views keep their address while pages come and go"


def test_mla_has_one_buffer_per_layer(vmm: CpuVmm) -> None:
    pytest.importorskip("torch")
    mla = KvSpec(num_layers=3, block_size=8, token_shape=(64,), dtype="bfloat16", kv_buffers=1)
    with ElasticKVCache(mla, 256, backend=vmm, page_size=PAGE) as cache:
        views = cache.tensors()
        assert len(views) == 3 and views[2].shape == (256, 8, 64)


def test_null_block_and_on_demand_pages(vmm: CpuVmm) -> None:
    with make(vmm) as cache:
        assert cache.null_block == 0
        u = cache.usage()
        per_page = PAGE // SPEC.block_bytes
        assert (u.pages_mapped, u.blocks_used, u.pages_virtual) == (1, 1, 1024 // per_page)
        ids = cache.alloc(per_page * 3)
        assert not isinstance(ids, CannotSchedule)
        assert 0 not in ids and len(set(ids.tolist())) == ids.size
        assert cache.usage().pages_mapped == 4
        assert cache.usage().held_bytes == 4 * PAGE * SPEC.buffers
        with pytest.raises(UsageError, match="null block"):
            cache.free([0])
        with pytest.raises(UsageError, match="not allocated"):
            cache.free([ids[0], ids[0]])
        cache.free(ids)
        u = cache.usage()
        assert u.pages_reserved == 1 and u.pages_mapped == 2, "one empty page stays pre-mapped (max reserve 1)"


def test_best_fit_prefers_the_page_that_holds_the_whole_request() -> None:
    table = BlockTable(num_blocks=64, block_bytes=1, page_size=8)
    table.add_pages(np.arange(8))
    everything = table.take(64)
    # Leave page 2 with 5 free, page 5 with 3 free, page 6 with 2 free.
    table.put(everything[(everything // 8 == 2)][:5])
    table.put(everything[(everything // 8 == 5)][:3])
    table.put(everything[(everything // 8 == 6)][:2])
    assert set((table.take(3) // 8).tolist()) == {5}, "smallest page that fits 3"
    assert set((table.take(6) // 8).tolist()) == {2, 6}, "no page fits 6: emptiest first, then the next"


def test_straddling_blocks_are_never_handed_out() -> None:
    table = BlockTable(num_blocks=10, block_bytes=3, page_size=8)  # blocks 2 and 5 straddle a boundary
    assert table.usable_blocks == 8
    table.add_pages(np.arange(table.num_pages))
    assert sorted(table.take(8).tolist()) == [0, 1, 3, 4, 6, 7, 8, 9]


def test_bad_input_is_one_usage_error_and_maps_nothing(vmm: CpuVmm) -> None:
    big = KvSpec(num_layers=1, block_size=64, token_shape=(8, 16), dtype="float32")  # 32 KiB blocks
    with pytest.raises(UsageError, match="does not fit a page"):
        ElasticKVCache(big, 16, backend=vmm, page_size=16 * 1024)
    with pytest.raises(UsageError, match="not a multiple"):
        ElasticKVCache(SPEC, 16, backend=vmm, page_size=1000)
    assert not vmm._book.reservations and not vmm._book.mappings
    with make(vmm) as cache:
        before = cache.usage()
        with pytest.raises(UsageError, match="virtual reservation"):
            cache.alloc(5000)
        assert cache.usage() == before


def test_balloon_shrinks_lazily_and_grows_back(vmm: CpuVmm) -> None:
    with make(vmm, 2048, max_reserved_pages=8) as cache:
        per_page = PAGE // SPEC.block_bytes
        ids = cache.alloc(per_page * 6)
        assert not isinstance(ids, CannotSchedule)
        page_bytes = PAGE * SPEC.buffers
        cache.resize(3 * page_bytes)
        assert cache.usage().pages_mapped == 7, "pages in use are never taken away"
        refused = cache.alloc(per_page * 2)
        assert isinstance(refused, CannotSchedule) and "limit" in refused.reason
        cache.free(ids[: per_page * 5])
        assert cache.usage().held_bytes <= 3 * page_bytes
        cache.resize(None)
        assert not isinstance(cache.alloc(per_page * 4), CannotSchedule)


def test_premapper_keeps_pages_ready(vmm: CpuVmm) -> None:
    with make(vmm, min_reserved_pages=3, max_reserved_pages=4) as cache:
        deadline = time.monotonic() + 5
        while cache.usage().pages_reserved < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert cache.usage().pages_reserved == 3
        free_before = cache.available_blocks()
        ids = cache.alloc(free_before)  # served from pre-mapped pages: no map on this call
        assert not isinstance(ids, CannotSchedule)


def test_spare_handles_are_reused(vmm: CpuVmm) -> None:
    with make(vmm, keep_handles=2, max_reserved_pages=0) as cache:
        per_page = PAGE // SPEC.block_bytes
        ids = cache.alloc(per_page * 2)
        assert not isinstance(ids, CannotSchedule)
        cache.free(ids)
        u = cache.usage()
        assert u.spare_handles == 2 * SPEC.buffers
        assert u.held_bytes == (u.pages_mapped * SPEC.buffers + u.spare_handles) * PAGE
        created = len(vmm._book.handles)
        assert not isinstance(cache.alloc(per_page * 2), CannotSchedule)
        assert len(vmm._book.handles) == created, "maps reuse spare handles instead of creating"


def _touch_freed_block() -> None:
    vmm = CpuVmm(cpu_device())
    cache = make(vmm, max_reserved_pages=0)
    arrays = cache.arrays("separate")
    per_page = PAGE // SPEC.block_bytes
    ids = cache.alloc(per_page * 2)
    assert not isinstance(ids, CannotSchedule)
    arrays[0][0][ids[-1]] = 1.0
    cache.free(ids)
    float(arrays[0][0][ids[-1]].sum())  # its page is unmapped now: SIGSEGV


def test_a_block_on_an_unmapped_page_faults() -> None:
    child = multiprocessing.get_context("spawn").Process(target=_touch_freed_block)
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGSEGV
