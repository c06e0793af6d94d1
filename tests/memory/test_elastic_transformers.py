"""A real transformers model's KV cache on the elastic pool: same tokens, and two model processes on one budget."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prism_core.errors import UsageError
from prism_core.memory import Broker
from prism_core.memory.spec import DEFAULT_PAGE_SIZE

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from prism_core.testing import RecordingRecorder  # noqa: E402
from prism_plugins.frameworks.transformers.adapter import TransformersAdapter  # noqa: E402
from prism_plugins.frameworks.transformers.kv import PagedGenerator, PagedKvStore  # noqa: E402
from prism_plugins.frameworks.transformers.kv_worker import EngineConfig, EngineProcess, prompt  # noqa: E402
from prism_plugins.frameworks.transformers.tiny import tiny_llama  # noqa: E402

PAGE_ID = DEFAULT_PAGE_SIZE * 8  # the tiny Llama has 4 layers x K/V: one page id maps 8 pages
ROWS, LENGTH, NEW = 4, 12, 24


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread, as the worker processes use: on a shared 2-core machine a thread pool mostly waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def reference(seed: int = 0) -> list[list[int]]:
    model = tiny_llama(seed)
    with torch.inference_mode():
        out = model.generate(prompt(ROWS, LENGTH), max_new_tokens=NEW, do_sample=False)
    return list(out.tolist())


def test_same_tokens_on_static_and_elastic_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISM_BROKER_DIR", str(tmp_path))
    model = tiny_llama(0)
    expected = reference(0)
    static = PagedKvStore.static(model, 256)
    elastic = PagedKvStore.elastic(model, 256, name="same-tokens")
    try:
        for store in (static, elastic):
            out = PagedGenerator(model, store).generate(prompt(ROWS, LENGTH), max_new_tokens=NEW, do_sample=False)
            assert out.tolist() == expected
        assert elastic.cache is not None
        usage = elastic.cache.usage()
        assert usage.blocks_used == 0  # every block of the finished request went back
        assert usage.pages_mapped >= 1
    finally:
        static.close()
        elastic.close()


def test_adapter_switch_puts_plain_generate_on_the_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PRISM_ELASTIC_KV: no code change, generate() runs on the pool, same tokens; the store goes with the model."""
    monkeypatch.setenv("PRISM_BROKER_DIR", str(tmp_path))
    monkeypatch.setenv("PRISM_ELASTIC_KV", "512")
    expected = reference(0)
    model = tiny_llama(0)
    adapter = TransformersAdapter()
    adapter.install(RecordingRecorder())
    try:
        with torch.inference_mode():
            out = model.generate(prompt(ROWS, LENGTH), max_new_tokens=NEW, do_sample=False)
        assert out.tolist() == expected
        broker = Broker("cpu:0", 1 << 30, tmp_path)
        (share,) = broker.info().models
        assert share.name == f"tiny-random-llama-{os.getpid()}" and share.held_bytes > 0 and share.grants >= 1
    finally:
        adapter.uninstall()
    del model
    gc.collect()
    assert broker.info().models == [], "the store closed with its model and left the broker"
    broker.close()


def test_request_larger_than_the_store_is_a_usage_error() -> None:
    model = tiny_llama(0)
    store = PagedKvStore.static(model, 4)
    with pytest.raises(UsageError, match="KV blocks"):
        PagedGenerator(model, store).generate(prompt(ROWS, LENGTH), max_new_tokens=NEW)


def _ledger(directory: Path) -> dict[str, int]:
    broker = Broker("cpu:0", PAGE_ID, directory)
    try:
        info = broker.info()
    finally:
        broker.close()
    assert info.used_bytes == sum(m.held_bytes for m in info.models) <= info.capacity_bytes
    return {m.name: m.refusals for m in info.models}


def test_two_model_processes_share_one_budget(tmp_path: Path) -> None:
    """One page id of budget: B waits (retry, then preemption by recompute) while A holds it, never crashes,
    and produces the same tokens as without the pool once A lets go."""
    ledger = Broker("cpu:0", PAGE_ID, tmp_path)  # the budget: one page id for both models
    options = {"max_reserved_pages": 0, "acquire_timeout_s": 0.05}
    procs = [EngineProcess(EngineConfig(n, str(tmp_path), options=options)) for n in ("a", "b")]
    a, b = procs
    try:
        expected = reference(0)
        assert a.call("hold", (ROWS, LENGTH))[0] == "ok"  # A's request in flight takes the whole budget
        b.send("generate", (ROWS, LENGTH, NEW))
        deadline = time.monotonic() + 60
        while _ledger(tmp_path)["b"] == 0:  # B was refused at least once: it is waiting, not crashed
            assert time.monotonic() < deadline, "B was never refused"
            time.sleep(0.02)
        assert b.process.is_alive()
        assert a.call("usage")[1].held_bytes == PAGE_ID
        assert a.call("release")[0] == "ok"
        assert a.call("usage")[1].held_bytes == 0  # freeing the request's blocks gave the page back
        status, (tokens, waits, _), _ = b.result()
        assert status == "ok" and tokens == expected
        assert waits >= 1
        for p in procs:  # now they take turns on the same budget
            p.send("generate", (ROWS, LENGTH, NEW))
        for p in procs:
            status, (tokens, _, _), _ = p.result()
            assert status == "ok" and tokens == expected
        for p in procs:
            p.call("release")
        held = {p.config.name: p.call("usage")[1].held_bytes for p in procs}
        broker = Broker("cpu:0", PAGE_ID, tmp_path)
        try:
            info = broker.info()
        finally:
            broker.close()
        assert {m.name: m.held_bytes for m in info.models} == held
    finally:
        for p in procs:
            p.stop()
        assert ledger.info().used_bytes == 0
        ledger.close()
