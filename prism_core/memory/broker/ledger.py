"""The broker's ledger: a small shared-memory file per device that every process maps.

Layout (little-endian), version `VERSION`:
- header (128 bytes): magic, version, slot count and size, capacity, a sequence number bumped on every
  change, and `txn`, set while a writer is mid-update;
- `SLOTS` slots (128 bytes each): state, priority, pid and its start time, min, max, held, reclaim (bytes
  the broker asks the model to give back), waiting (bytes it is waiting for), counters, name;
- an undo copy of the slot area.

Updates happen under `flock(LOCK_EX)` (plus a thread lock, since flock does not exclude threads sharing a
descriptor). A writer copies the slots to the undo area, sets `txn`, writes, then clears `txn`; if it is
killed in between, the next locker finds `txn` set and restores the undo copy, so no torn update survives
a kill -9.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import re
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from prism_core.errors import UsageError

MAGIC = b"PRISMLDG"
VERSION = 1
SLOTS = 64
_HEADER = struct.Struct("<8sIIIIQQQQ40s")  # magic version header slots slot_size capacity seq txn created device
_SLOT = struct.Struct("<IiqQQQQQQQQQ40s")
RECLAIM_AT = 48  # offset of `reclaim` inside a slot
HEADER_SIZE = 128
SLOT_SIZE = 128
SLOTS_AT = HEADER_SIZE
UNDO_AT = SLOTS_AT + SLOTS * SLOT_SIZE
FILE_SIZE = UNDO_AT + SLOTS * SLOT_SIZE
FREE, ACTIVE = 0, 1
ENV_DIR = "PRISM_BROKER_DIR"


@dataclass(frozen=True, slots=True)
class Slot:
    """One model's line in the ledger (bytes throughout)."""

    index: int
    state: int = FREE
    priority: int = 0
    pid: int = 0
    start_time: int = 0
    min_bytes: int = 0
    max_bytes: int = 0
    held: int = 0
    reclaim: int = 0
    waiting: int = 0
    grants: int = 0
    refusals: int = 0
    reclaimed: int = 0
    name: str = ""


def broker_dir() -> Path:
    """Where ledgers live: $PRISM_BROKER_DIR, else /dev/shm (memory-backed), else the temp folder."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else Path(tempfile.gettempdir())


def ledger_path(device_id: str, directory: Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", device_id)
    return (directory or broker_dir()) / f"prism-broker-{safe}.ledger"


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None if it is gone or a zombie.
    Pairing pid with start time keeps a recycled pid from passing for a dead model."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


class Ledger:
    """A mapped ledger file. Use `transaction()` to change slots and `snapshot()` to read them."""

    def __init__(self, path: Path, capacity: int, device_id: str, create: bool = True) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o666)
        except FileNotFoundError:
            raise UsageError(f"no broker ledger at {path}: it appears when the first model registers") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                self.device_id = self._init_file(capacity, device_id)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(self._fd)
            raise
        self._mm = mmap.mmap(self._fd, FILE_SIZE)

    def _init_file(self, capacity: int, device_id: str) -> str:
        size = os.fstat(self._fd).st_size
        if size == 0:
            if capacity <= 0:
                raise UsageError(f"broker capacity must be positive, got {capacity}")
            header = _HEADER.pack(
                MAGIC, VERSION, HEADER_SIZE, SLOTS, SLOT_SIZE, capacity, 0, 0, time.time_ns(), device_id.encode()
            )
            os.ftruncate(self._fd, FILE_SIZE)
            os.pwrite(self._fd, header, 0)
            return device_id
        raw = os.pread(self._fd, _HEADER.size, 0).ljust(_HEADER.size, b"\0")
        magic, version, hsize, slots, ssize, *_, device = _HEADER.unpack(raw)
        if (
            magic != MAGIC
            or (version, hsize, slots, ssize) != (VERSION, HEADER_SIZE, SLOTS, SLOT_SIZE)
            or (size != FILE_SIZE)
        ):
            raise UsageError(
                f"broker ledger {self.path} is not a version-{VERSION} Prism ledger (found magic {magic!r}, "
                f"version {version}); stop the models that use it, then delete it or set {ENV_DIR}"
            )
        return str(device.rstrip(b"\0").decode(errors="replace"))

    def close(self) -> None:
        with self._thread_lock:
            if self._fd < 0:
                return
            self._mm.close()
            os.close(self._fd)
            self._fd = -1

    # Header -----------------------------------------------------------------------------------------------

    def _header(self) -> tuple[int, int, int]:
        """(capacity, seq, txn)."""
        fields = _HEADER.unpack_from(self._mm, 0)
        return fields[5], fields[6], fields[7]

    def _set_header(self, capacity: int, seq: int, txn: int) -> None:
        struct.pack_into("<QQQ", self._mm, 24, capacity, seq, txn)

    # Locking ----------------------------------------------------------------------------------------------

    @contextmanager
    def _locked(self, op: int) -> Iterator[None]:
        with self._thread_lock:
            if self._fd < 0:
                raise UsageError(f"broker ledger {self.path} is closed")
            fcntl.flock(self._fd, op)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _recover(self) -> None:
        capacity, seq, txn = self._header()
        if txn:  # a writer died mid-update: roll its change back
            self._mm[SLOTS_AT:UNDO_AT] = self._mm[UNDO_AT:FILE_SIZE]
            self._set_header(capacity, seq + 1, 0)

    @contextmanager
    def transaction(self) -> Iterator[Table]:
        """Exclusive access; the yielded table's changes are written back atomically at exit."""
        with self._locked(fcntl.LOCK_EX):
            self._recover()
            capacity, seq, _ = self._header()
            table = Table(capacity, self._read_slots(SLOTS_AT))
            yield table
            dirty = [s for s in table.slots if s != table.original[s.index]]
            if not dirty and capacity == table.capacity:
                return
            self._mm[UNDO_AT:FILE_SIZE] = self._mm[SLOTS_AT:UNDO_AT]
            self._set_header(capacity, seq, 1)
            for s in dirty:
                _write_slot(self._mm, s)
            self._set_header(table.capacity, seq + 1, 0)

    def snapshot(self) -> tuple[int, int, list[Slot]]:
        """(capacity, seq, slots) under a shared lock; an interrupted update reads as its undo copy."""
        with self._locked(fcntl.LOCK_SH):
            capacity, seq, txn = self._header()
            return capacity, seq, self._read_slots(UNDO_AT if txn else SLOTS_AT)

    def reclaim_of(self, index: int) -> int:
        """The reclaim field of one slot, read without a lock (an 8-byte aligned load cannot tear)."""
        value: int = struct.unpack_from("<Q", self._mm, SLOTS_AT + index * SLOT_SIZE + RECLAIM_AT)[0]
        return value

    def _read_slots(self, at: int) -> list[Slot]:
        out = []
        for i in range(SLOTS):
            state, prio, pid, start, lo, hi, held, reclaim, wait, grants, refused, given, raw = _SLOT.unpack_from(
                self._mm, at + i * SLOT_SIZE
            )
            name = raw.rstrip(b"\0").decode(errors="replace")
            out.append(Slot(i, state, prio, pid, start, lo, hi, held, reclaim, wait, grants, refused, given, name))
        return out


def _write_slot(mm: mmap.mmap, s: Slot) -> None:
    name = s.name.encode()[:40]
    _SLOT.pack_into(
        mm,
        SLOTS_AT + s.index * SLOT_SIZE,
        s.state,
        s.priority,
        s.pid,
        s.start_time,
        s.min_bytes,
        s.max_bytes,
        s.held,
        s.reclaim,
        s.waiting,
        s.grants,
        s.refusals,
        s.reclaimed,
        name,
    )


@dataclass(slots=True)
class Table:
    """The slots as one transaction sees them; assign `slots[i] = replace(...)` to change one."""

    capacity: int
    slots: list[Slot]
    original: list[Slot] = field(init=False)

    def __post_init__(self) -> None:
        self.original = list(self.slots)

    def active(self) -> list[Slot]:
        return [s for s in self.slots if s.state == ACTIVE]

    def used(self) -> int:
        return sum(s.held for s in self.active())

    def update(self, index: int, **changes: int | str) -> Slot:
        self.slots[index] = new = replace(self.slots[index], **changes)  # type: ignore[arg-type]
        return new
