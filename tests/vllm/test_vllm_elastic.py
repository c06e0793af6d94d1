"""vLLM's KV cache on the elastic pool (PRISM_ELASTIC_KV=1), with real engines in the vLLM venv: the same greedy
tokens as vLLM's static cache, a budget too small for the batch turning into scheduling misses rather than a crash,
and two engines in two processes sharing one device budget."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from vllm_helpers import PROGRAMS, vllm_env

from prism_core.memory import Broker, CannotSchedule, ElasticKVCache, KvSpec, LedgerInfo
from prism_core.memory.broker import ledger_path

pytestmark = pytest.mark.slow

REQUESTS = 40  # two 128-token blocks each: 80 blocks, three 32-block pages of the tiny Llama


class Engine:
    """One `vllm_elastic.py` process, started and waiting at READY."""

    def __init__(self, python: Path, model: Path, *args: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [str(python), str(PROGRAMS / "vllm_elastic.py"), str(model), str(REQUESTS), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=vllm_env(**{"VLLM_ENABLE_V1_MULTIPROCESSING": "0", **env}),
        )
        self.page_bytes = -1
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("READY"):
                self.page_bytes = int(line.split()[1])
                return
        self.fail()

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def result_line(self) -> dict:
        """The JSON line of a `hold` engine, which stays up until `go` again."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        self.fail()
        return {}

    def result(self) -> dict:
        out, err = self.proc.communicate(timeout=300)
        if self.proc.returncode != 0:
            self.fail(err)
        self.stderr = err
        return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])

    def fail(self, err: str | None = None) -> None:
        self.proc.kill()
        _, rest = self.proc.communicate()
        pytest.fail(f"engine exited {self.proc.returncode}: {(err or rest)[-3000:]}")


@contextmanager
def watching(broker: Broker) -> Iterator[list[LedgerInfo]]:
    """The ledger, read every 5 ms while the block runs."""
    seen: list[LedgerInfo] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.005):
            seen.append(broker.info())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()


def run(python: Path, model: Path, **env: str) -> dict:
    engine = Engine(python, model, **env)
    engine.go()
    return engine.result()


@pytest.fixture(scope="module")
def static_tokens(vllm_python: Path, tiny_model_dir: Path) -> list[list[int]]:
    tokens = run(vllm_python, tiny_model_dir)["tokens"]
    assert len(tokens) == REQUESTS and len({tuple(t) for t in tokens}) > REQUESTS // 2  # varied, not one token
    return tokens


def test_same_tokens_on_the_pool(
    vllm_python: Path, tiny_model_dir: Path, static_tokens: list[list[int]], tmp_path: Path
) -> None:
    got = run(vllm_python, tiny_model_dir, PRISM_ELASTIC_KV="1", PRISM_BROKER_DIR=str(tmp_path))
    assert got["tokens"] == static_tokens
    assert got["misses"] == 0 and got["peak_held"] >= 3 * got["page_bytes"]  # the pages were mapped on demand
    info = Broker.open_existing(ledger_path("cpu:0", tmp_path)).info()
    assert info.models == [] and info.used_bytes == 0  # the engine's pages went back when it exited


def test_small_budget_is_a_scheduling_miss(
    vllm_python: Path, tiny_model_dir: Path, static_tokens: list[list[int]], tmp_path: Path
) -> None:
    Broker("cpu:0", 1 << 40, tmp_path).close()
    engine = Engine(vllm_python, tiny_model_dir, PRISM_ELASTIC_KV="1", PRISM_BROKER_DIR=str(tmp_path))
    budget = 2 * engine.page_bytes  # the batch needs three pages
    broker = Broker.open_existing(ledger_path("cpu:0", tmp_path))
    broker.set_capacity(budget)
    engine.go()
    got = engine.result()
    broker.close()
    assert got["tokens"] == static_tokens
    assert got["misses"] > 0 and got["peak_held"] <= budget


def test_two_engines_share_one_budget(
    vllm_python: Path, tiny_model_dir: Path, static_tokens: list[list[int]], tmp_path: Path
) -> None:
    Broker("cpu:0", 1 << 40, tmp_path).close()
    env = {"PRISM_ELASTIC_KV": "1", "PRISM_BROKER_DIR": str(tmp_path)}
    low = Engine(vllm_python, tiny_model_dir, PRISM_KV_PRIORITY="0", **env)
    high = Engine(vllm_python, tiny_model_dir, PRISM_KV_PRIORITY="1", **env)
    budget = 4 * low.page_bytes  # each engine's batch needs three pages
    broker = Broker.open_existing(ledger_path("cpu:0", tmp_path))
    broker.set_capacity(budget)
    with watching(broker) as seen:
        low.go()
        high.go()
        results = [low.result(), high.result()]
    broker.close()
    assert [r["tokens"] for r in results] == [static_tokens, static_tokens]
    assert sum(r["misses"] for r in results) > 0  # six pages wanted, four to share: someone waited
    assert max(i.used_bytes for i in seen) <= budget
    priorities = {m.name: m.priority for i in seen for m in i.models}
    assert priorities == {results[0]["name"]: 0, results[1]["name"]: 1}


def test_multiprocess_engine_worker_follows_the_scheduler(
    vllm_python: Path, tiny_model_dir: Path, static_tokens: list[list[int]], tmp_path: Path
) -> None:
    """vLLM's default on CPU: the scheduler in an engine-core process, the KV cache in a worker process."""
    Broker("cpu:0", 1 << 40, tmp_path).close()
    env = {"PRISM_ELASTIC_KV": "1", "PRISM_BROKER_DIR": str(tmp_path), "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    engine = Engine(vllm_python, tiny_model_dir, **env)
    broker = Broker.open_existing(ledger_path("cpu:0", tmp_path))
    page_bytes = broker.info().used_bytes  # the engine core's cache holds the null block's page alone
    budget = 2 * page_bytes  # the batch needs three pages
    broker.set_capacity(budget)
    with watching(broker) as seen:
        engine.go()
        got = engine.result()
    broker.close()
    assert page_bytes > 0 and got["tokens"] == static_tokens
    assert "pages follow the scheduler's" in engine.stderr and "mapped by its worker process" in engine.stderr
    assert max(i.used_bytes for i in seen) <= budget
    assert max(m.refusals for i in seen for m in i.models) > 0  # scheduling misses, not a crash


def test_idle_multiprocess_worker_gives_back_with_its_scheduler(
    vllm_python: Path, tiny_model_dir: Path, static_tokens: list[list[int]], tmp_path: Path
) -> None:
    """An idle server asked to give back: the worker's memory goes with the scheduler's budget, no step needed."""
    env = {"PRISM_ELASTIC_KV": "1", "PRISM_BROKER_DIR": str(tmp_path), "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    engine = Engine(vllm_python, tiny_model_dir, "hold", **env)
    broker = Broker.open_existing(ledger_path("cpu:0", tmp_path))
    try:
        engine.go()
        assert engine.result_line()["tokens"] == static_tokens
        worker = next(pid for pid in descendants(engine.proc.pid) if kv_bytes(pid))
        settled = wait_for(lambda: kv_bytes(worker) == broker.info().used_bytes)
        before = kv_bytes(worker)
        assert settled and before > 0
        # All of the budget is held; a model of higher priority asks for a little: the idle server gives back.
        broker.set_capacity(broker.info().used_bytes)
        spec = KvSpec(num_layers=1, block_size=1, token_shape=(4096,), dtype="uint8", kv_buffers=1)
        urgent = ElasticKVCache.for_device(
            spec, 512, name="urgent", priority=1, reserve_null_block=False, broker_dir=tmp_path
        )
        try:
            assert not isinstance(urgent.alloc(1, wait_s=5.0), CannotSchedule)
            engine_held = next(m.held_bytes for m in broker.info().models if m.name != "urgent")
            assert wait_for(lambda: kv_bytes(worker) == engine_held) and kv_bytes(worker) < before
        finally:
            urgent.close()
    finally:
        broker.close()
        engine.go()
        engine.proc.communicate(timeout=300)


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    out, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        out += sorted(frontier)
    return out


def kv_bytes(pid: int) -> int:
    """Bytes of the pool's pages (cpu backend: memfd "prism-kv") mapped in process `pid`."""
    total = 0
    try:
        lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if "memfd:prism-kv" in line:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            total += end - start
    return total
