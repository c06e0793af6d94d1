"""The shared page map a scheduler's cache writes and its worker reads, and the cache that writes it on a shadow
backend (blocks and budget, no memory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prism_core.memory import CannotSchedule, ElasticKVCache, KvSpec
from prism_core.memory.pagemap import PageMap

PAGE = 2 << 20
SPEC = KvSpec(num_layers=2, block_size=1, token_shape=(PAGE // 4,), dtype="uint8", kv_buffers=1)  # 4 blocks/page


def test_a_reader_sees_what_the_writer_maps() -> None:
    writer = PageMap.new(8)
    reader = PageMap(writer.path, 8, create=False)
    try:
        before = reader.snapshot()
        writer.set([0, 3, 5], True)
        writer.set([3], False)
        assert reader.snapshot() != before and reader.unmapped([0, 3, 5, 7]) == [3, 7]
    finally:
        reader.close()
        writer.close(unlink=True)
    assert not writer.path.exists()


def test_a_shadow_cache_keeps_blocks_budget_and_the_map_but_no_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRISM_BROKER_DIR", str(tmp_path))
    shared = PageMap.new(8)
    cache = ElasticKVCache.for_device(SPEC, 32, name="shadow", page_size=PAGE, shadow=True, on_pages=shared.set)
    try:
        assert cache.mapped_pages() == [0] and shared.unmapped(list(range(8))) == list(range(1, 8))  # null block
        ids = cache.alloc(6)
        assert not isinstance(ids, CannotSchedule)
        assert cache.mapped_pages() == [0, 1] and cache.usage().held_bytes == 2 * 2 * PAGE  # the ledger's view
        cache.free(ids)
        cache.trim()
        assert cache.mapped_pages() == [0] and shared.unmapped([0, 1]) == [1]
        assert cache.backend.host_accessible is False  # nothing a view could point at
    finally:
        cache.close()
        shared.close(unlink=True)
