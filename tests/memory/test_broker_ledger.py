"""The ledger file: versioning, limits that cannot be honoured, and recovery from an interrupted update."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from prism_core.errors import UsageError
from prism_core.memory import Broker
from prism_core.memory.broker.ledger import HEADER_SIZE, SLOT_SIZE, SLOTS_AT, ledger_path

MIB = 2**20


def test_a_ledger_of_another_version_is_refused(tmp_path: Path) -> None:
    path = ledger_path("cpu:0", tmp_path)
    Broker("cpu:0", 64 * MIB, tmp_path).close()
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 8, 99)
    path.write_bytes(bytes(raw))
    with pytest.raises(UsageError, match="version-1"):
        Broker("cpu:0", 64 * MIB, tmp_path)
    path.write_bytes(b"not a ledger at all")
    with pytest.raises(UsageError, match="delete it"):
        Broker("cpu:0", 64 * MIB, tmp_path)


def test_limits_that_cannot_be_honoured_are_usage_errors(tmp_path: Path) -> None:
    broker = Broker("cpu:0", 64 * MIB, tmp_path)
    try:
        with pytest.raises(UsageError, match="above the device"):
            broker.register("huge", min_bytes=65 * MIB)
        a = broker.register("a", min_bytes=40 * MIB)
        with pytest.raises(UsageError, match="exceeds the device"):
            broker.register("b", min_bytes=30 * MIB)
        with pytest.raises(UsageError, match="already registered"):
            broker.register("a")
        with pytest.raises(UsageError, match="min <= max"):
            broker.set_limit("a", max_bytes=MIB)
        with pytest.raises(UsageError, match="no live model"):
            broker.set_limit("ghost", max_bytes=MIB)
        assert broker.set_limit("a", priority=3, max_bytes=50 * MIB).priority == 3
        assert [m.name for m in broker.info().models] == ["a"]
        a.close()
        assert broker.info().models == []
    finally:
        broker.close()


def test_lowering_max_asks_the_model_to_give_back(tmp_path: Path) -> None:
    broker = Broker("cpu:0", 64 * MIB, tmp_path)
    try:
        m = broker.register("m")
        assert m.acquire(10 * MIB).nbytes == 10 * MIB  # type: ignore[union-attr]
        broker.set_limit("m", max_bytes=4 * MIB)
        assert m.reclaim_requested() == 6 * MIB
        m.release(6 * MIB)
        assert m.reclaim_requested() == 0 and m.share().reclaimed_bytes == 6 * MIB
    finally:
        broker.close()


def test_an_interrupted_update_is_rolled_back(tmp_path: Path) -> None:
    broker = Broker("cpu:0", 64 * MIB, tmp_path)
    try:
        m = broker.register("m")
        m.acquire(8 * MIB)
        # What a writer killed mid-update leaves: undo copy taken, txn set, a slot half written.
        mm = broker.ledger._mm
        mm[SLOTS_AT + 64 * SLOT_SIZE : SLOTS_AT + 128 * SLOT_SIZE] = mm[SLOTS_AT : SLOTS_AT + 64 * SLOT_SIZE]
        struct.pack_into("<Q", mm, 40, 1)
        struct.pack_into("<Q", mm, SLOTS_AT + m.index * SLOT_SIZE + 40, 2**40)  # torn `held`
        assert broker.ledger.snapshot()[2][m.index].held == 8 * MIB, "readers see the undo copy"
        info = broker.info()
        assert info.used_bytes == 8 * MIB and info.models[0].held_bytes == 8 * MIB
        assert struct.unpack_from("<Q", mm, 40)[0] == 0
    finally:
        broker.close()
    assert HEADER_SIZE == SLOTS_AT
