"""SGLang's KV cache on the elastic pool, against a stand-in that calls the pool as SGLang's scheduler does
(prism_core.testing.sglang_memory), on real pages, a real broker and, for sharing, two real processes; and, where
SGLang and a GPU are present, against the real engine (`gpu`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sglang_engine import generate, model

from prism_core.capture.patching import Patcher
from prism_core.memory import CannotSchedule, ElasticKVCache, KvSpec
from prism_core.memory.broker import Broker, ledger_path
from prism_core.testing import RecordingRecorder
from prism_core.testing.sglang_loop import Req
from prism_core.testing.sglang_memory import PooledScheduler, TokenToKVPoolAllocator, init_memory_pool
from prism_core.testing.sglang_memory import model_runner_module as fresh_module
from prism_plugins.frameworks.sglang import SglangAdapter
from prism_plugins.frameworks.sglang.kv import MEMORY_MODULES, ElasticSglang, ElasticSlots, pass_demand

POOL = 8192  # token slots SGLang sized its pool for
PAGE_SET = 4 * 2 * 2**20  # one 2 MiB page in each of the 4 buffers (2 layers, K and V): 1,024 token slots
SPEC = KvSpec(num_layers=2, block_size=1, token_shape=(8, 64), dtype="float32")  # the stand-in's, per token
CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from prism_core.capture.patching import Patcher
    from prism_core.testing.sglang_memory import PooledScheduler, init_memory_pool, model_runner_module
    from prism_plugins.frameworks.sglang.kv import ElasticSglang
    sys.path.insert(0, sys.argv[1])
    from test_sglang_kv import requests
    elastic, module = ElasticSglang(Patcher(), int(sys.argv[2])), model_runner_module()
    elastic.patch_module(module)
    elastic.patch_scheduler(PooledScheduler)
    reqs = requests()
    scheduler = PooledScheduler(reqs, init_memory_pool(module, 8192))
    print("ready", flush=True)
    while not os.path.exists(sys.argv[3]):  # both start serving together
        time.sleep(0.005)
    scheduler.event_loop_normal()
    print(json.dumps({"tokens": [r.output_ids for r in reqs], "peak": scheduler.peak_running}))
    """
)


def requests() -> list[Req]:
    return [Req(f"r{i}", [(7 * i + j) % 50 for j in range(150 + 10 * i)], 30) for i in range(12)]


def run(allocator: object) -> tuple[list[list[int]], PooledScheduler]:
    reqs = requests()
    scheduler = PooledScheduler(reqs, allocator)
    scheduler.event_loop_normal()
    return [r.output_ids for r in reqs], scheduler


@pytest.fixture(scope="module")
def static_run() -> tuple[list[list[int]], PooledScheduler]:
    tokens, scheduler = run(init_memory_pool(fresh_module(), POOL))
    assert scheduler.retractions == 0 and len({tuple(t) for t in tokens}) > 6  # varied, not one token
    return tokens, scheduler


@pytest.fixture(scope="module")
def static_tokens(static_run: tuple[list[list[int]], PooledScheduler]) -> list[list[int]]:
    return static_run[0]


@pytest.fixture
def elastic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ElasticSglang, object]]:
    monkeypatch.setenv("PRISM_BROKER_DIR", str(tmp_path))
    patcher = Patcher()
    kv, module = ElasticSglang(patcher), fresh_module()
    kv.patch_module(module)
    kv.patch_scheduler(PooledScheduler)
    yield kv, module
    patcher.restore()
    for cache in kv.caches:
        cache.close()


def watch_ledger(tmp_path: Path) -> tuple[list[int], threading.Event, threading.Thread]:
    broker = Broker.open_existing(ledger_path("cpu:0", tmp_path))
    seen: list[int] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.002):
            seen.append(broker.info().used_bytes)
        broker.close()

    thread = threading.Thread(target=loop)
    thread.start()
    return seen, stop, thread


def test_same_tokens_on_the_pool(elastic: tuple[ElasticSglang, object], static_tokens: list[list[int]]) -> None:
    kv, module = elastic
    allocator = init_memory_pool(module, POOL)
    assert isinstance(allocator, ElasticSlots) and isinstance(allocator, TokenToKVPoolAllocator)
    shape = tuple(allocator.get_kvcache().k_buffer[0].shape)  # (no view in an assert: its repr would read them)
    assert shape == (POOL + 1, 8, 64) and kv.caches[0].usage().pages_mapped == 1  # slot 0's page set
    tokens, scheduler = run(allocator)
    assert tokens == static_tokens and scheduler.retractions == 0
    # The idle pass ran SGLang's leak check (size = free + held) and gave every secured slot back.
    assert allocator.available_size() == POOL
    usage = kv.caches[0].usage()
    assert usage.blocks_used == 1 and usage.pages_in_use == 1  # only the padding slot's pages stay in use


def test_small_budget_admits_fewer_and_never_crashes(
    elastic: tuple[ElasticSglang, object], static_run: tuple[list[list[int]], PooledScheduler], tmp_path: Path
) -> None:
    budget = 2 * PAGE_SET  # 2,047 usable slots for a pool of 8,192 and about 2,500 tokens of work
    Broker("cpu:0", budget, tmp_path).close()
    _, module = elastic
    allocator = init_memory_pool(module, POOL)
    seen, stop, watcher = watch_ledger(tmp_path)
    try:
        tokens, scheduler = run(allocator)
    finally:
        stop.set()
        watcher.join()
    assert tokens == static_run[0]
    # Requests waited for memory instead of crashing the scheduler: fewer ran at once than on the static pool.
    assert scheduler.peak_running < static_run[1].peak_running
    assert max(seen) <= budget and max(seen) == budget  # the pool grew to the budget, never past it


def test_two_processes_share_one_budget(static_run: tuple[list[list[int]], PooledScheduler], tmp_path: Path) -> None:
    budget = 4 * PAGE_SET  # each process wants about three page sets
    Broker("cpu:0", budget, tmp_path).close()
    env = {**os.environ, "PRISM_BROKER_DIR": str(tmp_path)}
    here = str(Path(__file__).parent)
    seen, stop, watcher = watch_ledger(tmp_path)
    go = tmp_path / "go"
    try:
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, here, str(p), str(go)], env=env, stdout=subprocess.PIPE, text=True
            )
            for p in (0, 1)
        ]
        assert [c.stdout.readline().strip() for c in children if c.stdout] == ["ready", "ready"]
        go.touch()
        results = [json.loads(c.communicate(timeout=120)[0]) for c in children]
    finally:
        stop.set()
        watcher.join()
    assert all(c.returncode == 0 for c in children)
    assert [r["tokens"] for r in results] == [static_run[0]] * 2
    assert max(seen) == budget  # six page sets wanted, four to share: the ledger was full, and never past it


def test_prefix_cache_gives_back_when_a_higher_priority_model_asks(
    elastic: tuple[ElasticSglang, object], static_tokens: list[list[int]], tmp_path: Path
) -> None:
    budget = 4 * PAGE_SET
    Broker("cpu:0", budget, tmp_path).close()
    kv, module = elastic
    reqs = requests()
    scheduler = PooledScheduler(reqs, init_memory_pool(module, POOL), radix_cache=True)
    scheduler.event_loop_normal()  # finished requests stay cached: their pages stay held
    assert [r.output_ids for r in reqs] == static_tokens and scheduler.tree_cache is not None
    cached = scheduler.tree_cache.evictable_size()
    assert cached > 2 * 1024 and kv.caches[0].usage().pages_mapped >= 3
    # A model of higher priority needs two page sets of the four; the idle SGLang evicts cached prefixes for it.
    other = ElasticKVCache.for_device(SPEC, 4096, name="urgent", priority=1, reserve_null_block=False)
    stop = threading.Event()
    loop = threading.Thread(target=scheduler.serve, args=(stop,))
    loop.start()
    try:
        got = other.alloc(2048, wait_s=5.0)
    finally:
        stop.set()
        loop.join()
        other.close()
    assert not isinstance(got, CannotSchedule), got
    assert scheduler.tree_cache.evictable_size() < cached
    scheduler.check_memory()  # SGLang's own count still adds up


def test_pass_demand_is_sglang_estimate() -> None:
    waiting = [Req("w1", [1] * 100, 50), Req("w2", [1] * 300, 50), Req("w3", [1] * 200, 8)]
    scheduler = PooledScheduler(waiting, init_memory_pool(fresh_module(), 64), max_prefill_tokens=450)
    scheduler.running_batch.reqs = [Req("a", [1] * 10, 20, output_ids=[1] * 4), Req("b", [1] * 10, 10)]
    # running: a next token each, plus ceil(16 * 0.5) and ceil(10 * 0.5); waiting up to 450 prompt tokens: w1, w2.
    assert pass_demand(scheduler) == (2, 2 + 8 + 5 + (100 + 25) + (300 + 25))
    scheduler.waiting_queue = []
    assert pass_demand(scheduler) == (2, 2)  # decode only: the next tokens


def test_unsupported_pools_stay_static(elastic: tuple[ElasticSglang, object], capsys: pytest.CaptureFixture) -> None:
    _, module = elastic
    allocator = init_memory_pool(module, POOL, need_sort=True)  # disaggregation sorts its free lists
    assert type(allocator) is TokenToKVPoolAllocator
    paged = module.MHATokenToKVPool(64, page_size=16, dtype=allocator.dtype, head_num=2, head_dim=8, layer_num=1,
                                    device="cpu")  # fmt: skip
    shape = tuple(paged.k_buffer[0].shape)
    assert paged.prism_cache is None and shape == (80, 2, 8)
    assert "page size is 16 (only 1 is supported); the KV cache stays static" in capsys.readouterr().err


def test_adapter_installs_the_pool_with_prism_elastic_kv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PRISM_ELASTIC_KV", "1")
    monkeypatch.setenv("PRISM_BROKER_DIR", str(tmp_path))
    module = fresh_module()
    monkeypatch.setitem(sys.modules, MEMORY_MODULES[0], module)
    adapter = SglangAdapter()
    adapter.install(RecordingRecorder())
    kv = adapter.elastic
    try:
        assert kv is not None and module.TokenToKVPoolAllocator is not TokenToKVPoolAllocator
        assert isinstance(init_memory_pool(module, 1024), ElasticSlots) and len(kv.caches) == 1
    finally:
        adapter.uninstall()
        for cache in kv.caches if kv else []:
            cache.close()
    assert module.TokenToKVPoolAllocator is TokenToKVPoolAllocator


@pytest.mark.gpu
def test_real_sglang_same_tokens_on_the_pool(tmp_path: Path) -> None:
    """A real SGLang engine under `prism run`, with and without the pool: the same greedy tokens."""
    model_dir = model(tmp_path)
    texts = []
    for flag in ("0", "1"):
        out, stderr = generate(tmp_path, model_dir, 16, PRISM_ELASTIC_KV=flag, PRISM_BROKER_DIR=str(tmp_path))
        assert ("token slots of" in stderr) == (flag == "1")  # the pool was (only) used when asked
        texts.append(out)
    assert texts[0] == texts[1]
