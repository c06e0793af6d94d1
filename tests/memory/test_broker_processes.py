"""The broker between real processes: contention, priority reclaim, min guarantees, kill -9 recovery.

After every scenario the ledger must agree with the processes: the bytes it says each model holds are the
bytes that model's pool has mapped (or keeps as spare handles).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prism_core.memory import Broker, KvSpec
from prism_core.memory.workers import ModelConfig, ModelProcess

PAGE = 64 * 1024
SPEC = KvSpec(num_layers=2, block_size=4, token_shape=(2, 16), dtype="float32")  # 512-byte blocks, 4 buffers
PAGE_ID = PAGE * SPEC.buffers  # physical bytes of one page id
PER_PAGE = PAGE // SPEC.block_bytes
CAPACITY = 8 * PAGE_ID


@pytest.fixture
def ledger_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def procs() -> Iterator[list[ModelProcess]]:
    started: list[ModelProcess] = []
    yield started
    for p in started:
        if p.process.is_alive():
            p.stop()


def start(procs: list[ModelProcess], ledger_dir: Path, name: str, **terms: object) -> ModelProcess:
    options = terms.pop("options", {"max_reserved_pages": 0})
    cfg = ModelConfig(name, str(ledger_dir), CAPACITY, SPEC, 64 * PER_PAGE, PAGE, options=options, **terms)  # type: ignore[arg-type]
    p = ModelProcess(cfg)
    procs.append(p)
    return p


def assert_consistent(ledger_dir: Path, live: list[ModelProcess]) -> None:
    broker = Broker("cpu:0", CAPACITY, ledger_dir)
    try:
        info = broker.info()
    finally:
        broker.close()
    by_name = {m.name: m.held_bytes for m in info.models}
    alive = [p for p in live if p.process.is_alive()]
    assert sorted(by_name) == sorted(p.config.name for p in alive)
    for p in alive:
        assert by_name[p.config.name] == p.held_bytes(), f"{p.config.name}: ledger and pool disagree"
    assert info.used_bytes == sum(by_name.values()) <= info.capacity_bytes


def test_two_equal_processes_contend_then_share(ledger_dir: Path, procs: list[ModelProcess]) -> None:
    a = start(procs, ledger_dir, "a")
    b = start(procs, ledger_dir, "b")
    # Each model maps the page of its null block at start: 1 page id each.
    assert a.alloc(6 * PER_PAGE)[0] == "ok"  # 6 more page ids: the budget of 8 is full
    status, reason, _ = b.alloc(PER_PAGE)
    assert status == "refused" and "cannot schedule now" in reason, "equal priority: no reclaim"
    assert_consistent(ledger_dir, procs)
    a.free()
    assert b.alloc(6 * PER_PAGE)[0] == "ok"
    assert_consistent(ledger_dir, procs)


def test_four_processes_never_pass_the_budget(ledger_dir: Path, procs: list[ModelProcess]) -> None:
    models = [start(procs, ledger_dir, f"m{i}") for i in range(4)]
    answers = [m.alloc(3 * PER_PAGE)[0] for m in models]  # 3 more page ids each; 4 are free
    assert answers == ["ok", "refused", "refused", "refused"]
    assert_consistent(ledger_dir, procs)
    for m in models:
        m.free()
    for m in models:
        assert m.alloc(PER_PAGE)[0] == "ok"  # 1 more page id each: exactly the budget
    assert_consistent(ledger_dir, procs)
    models[0].stop()
    assert_consistent(ledger_dir, procs)


def test_high_priority_reclaims_from_an_idle_low_priority_model(ledger_dir: Path, procs: list[ModelProcess]) -> None:
    low = start(procs, ledger_dir, "low", priority=0, options={"max_reserved_pages": 64})
    high = start(procs, ledger_dir, "high", priority=5)
    assert low.alloc(6 * PER_PAGE)[0] == "ok"
    low.free()  # idle, but keeps its 7 pages mapped (a large pre-mapped reserve)
    assert low.held_bytes() == 7 * PAGE_ID
    status, n, _ = high.alloc(5 * PER_PAGE)
    assert status == "ok" and n == 5 * PER_PAGE
    assert low.held_bytes() <= CAPACITY - 6 * PAGE_ID
    assert_consistent(ledger_dir, procs)


@pytest.mark.parametrize("donate", [True, False])
def test_reclaimed_pages_move_between_processes(ledger_dir: Path, procs: list[ModelProcess], donate: bool) -> None:
    """The idle model hands its (written) pages to the waiting one instead of freeing them, unless told not to."""
    low = start(procs, ledger_dir, "low", priority=0, options={"max_reserved_pages": 64, "donate": donate})
    high = start(procs, ledger_dir, "high", priority=5)
    assert low.alloc(6 * PER_PAGE)[0] == "ok"
    low.call("touch")  # every byte of low's pages is 1
    low.free()
    assert high.alloc(5 * PER_PAGE)[0] == "ok"
    first = high.call("peek")[1]
    new = [first[p] for p in sorted(first) if p != 0]  # page 0 holds high's null block: its own fresh page
    assert len(new) == 5 and new == ([1] * 5 if donate else [0] * 5)
    assert_consistent(ledger_dir, procs)
    high.free()
    high.call("trim")
    assert_consistent(ledger_dir, procs)


def test_live_kv_is_kept_and_mins_are_guaranteed(ledger_dir: Path, procs: list[ModelProcess]) -> None:
    low = start(procs, ledger_dir, "low", priority=0, min_bytes=2 * PAGE_ID)
    high = start(procs, ledger_dir, "high", priority=5, options={"max_reserved_pages": 64})
    assert low.alloc(6 * PER_PAGE)[0] == "ok"
    status, reason, _ = high.alloc(2 * PER_PAGE)
    assert status == "refused" and "did not give back" in reason, "blocks in use are never taken"
    low.free()  # back to its null page: 1 page id, below its min
    status, reason, _ = high.alloc(7 * PER_PAGE)
    assert status == "refused" and "can give back 0" in reason, "low is under its min: nothing to reclaim"
    assert high.alloc(6 * PER_PAGE)[0] == "ok"
    high.free()  # idle, keeps its pages mapped
    assert low.alloc(PER_PAGE)[0] == "ok", "under its min, low reclaims even from a higher priority"
    assert low.held_bytes() == 2 * PAGE_ID
    assert_consistent(ledger_dir, procs)


def test_pages_of_a_killed_process_come_back(ledger_dir: Path, procs: list[ModelProcess]) -> None:
    holder = start(procs, ledger_dir, "holder")
    other = start(procs, ledger_dir, "other")
    assert holder.alloc(6 * PER_PAGE)[0] == "ok"
    assert other.alloc(PER_PAGE)[0] == "refused"
    holder.kill()
    assert other.alloc(6 * PER_PAGE)[0] == "ok"
    assert_consistent(ledger_dir, procs)
