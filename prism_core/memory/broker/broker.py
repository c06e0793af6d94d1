"""The per-device memory broker: guarantees (min), caps (max), priorities, reclaim and dead-pid recovery.

Every process that maps KV pages on a device registers its model here and asks before mapping. The answer
is a `Grant`, or `CannotSchedule` with the reason; when free memory is short, models of lower priority that
hold more than their min are asked (through their `reclaim` field) to give pages back, which they do at
their next free, trim, or background tick. A model below its own min may take from any model above its
min, whatever the priorities. Pages of a process that died return at the next ledger access.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from prism_core.errors import UsageError
from prism_core.memory.broker.ledger import ACTIVE, FREE, Ledger, Slot, Table, ledger_path, process_start_time
from prism_core.memory.broker.mailbox import Mailbox
from prism_core.memory.report import LedgerInfo, ShareInfo
from prism_core.memory.results import CannotSchedule, Grant
from prism_core.models import Device

POLL_S = 0.0005  # a requester re-checks the ledger this often while lower-priority models give back


def sweep(table: Table) -> list[Slot]:
    """Free the slots of dead processes (their memory went with them) and drop reclaim asks nobody waits
    for any more; returns the freed slots."""
    dead = [s for s in table.active() if process_start_time(s.pid) != s.start_time]
    for s in dead:
        table.update(s.index, state=FREE, held=0, reclaim=0, waiting=0)
    if not any(s.waiting for s in table.active()):
        for s in table.active():
            over_max = max(0, s.held - s.max_bytes)
            if s.reclaim != over_max:
                table.update(s.index, reclaim=over_max)
    return dead


class Broker:
    """One device's ledger, opened by any process (engines, `prism mem`)."""

    def __init__(self, device_id: str, capacity: int, directory: Path | None = None) -> None:
        self.device_id = device_id
        self.ledger = Ledger(ledger_path(device_id, directory), capacity, device_id)

    @classmethod
    def open_existing(cls, path: Path) -> Broker:
        """A ledger some model already created (`prism mem`): never creates one."""
        broker = cls.__new__(cls)
        broker.ledger = Ledger(path, 0, "", create=False)
        broker.device_id = broker.ledger.device_id
        return broker

    @classmethod
    def for_device(cls, device: Device, directory: Path | None = None) -> Broker:
        """The device's broker; a new ledger's capacity is the device's memory (`prism mem limit` lowers it)."""
        return cls(device.id, device.memory_total_bytes, directory)

    def close(self) -> None:
        self.ledger.close()

    def register(self, name: str, *, min_bytes: int = 0, max_bytes: int | None = None, priority: int = 0) -> Member:
        """Add this process's model. UsageError for a duplicate live name, min > max, or mins that together
        exceed the device: a guarantee the broker could not keep is refused up front."""
        if not name or len(name.encode()) > 40:
            raise UsageError(f"model name must be 1-40 bytes, got {name!r}")
        pid = os.getpid()
        start = process_start_time(pid) or 0
        with self.ledger.transaction() as t:
            sweep(t)
            cap = max_bytes if max_bytes is not None else t.capacity
            _check_limits(t, name, min_bytes, cap, skip=None)
            if any(s.name == name for s in t.active()):
                raise UsageError(f"a live model named {name!r} is already registered on {self.device_id}")
            free = next((s for s in t.slots if s.state == FREE), None)
            if free is None:
                raise UsageError(f"the broker of {self.device_id} has no free slot (64 models at most)")
            t.slots[free.index] = Slot(
                free.index, ACTIVE, priority, pid, start, min_bytes, cap, name=name, reclaim=0, held=0
            )
        return Member(self, free.index, name)

    def set_limit(
        self, name: str, *, min_bytes: int | None = None, max_bytes: int | None = None, priority: int | None = None
    ) -> ShareInfo:
        """Change a live model's min, max or priority; over a lowered max it gives pages back lazily."""
        with self.ledger.transaction() as t:
            sweep(t)
            s = _named(t, name, self.device_id)
            lo = s.min_bytes if min_bytes is None else min_bytes
            hi = s.max_bytes if max_bytes is None else max_bytes
            _check_limits(t, name, lo, hi, skip=s.index)
            s = t.update(
                s.index,
                min_bytes=lo,
                max_bytes=hi,
                priority=s.priority if priority is None else priority,
                reclaim=max(s.reclaim, s.held - hi, 0),
            )
        return _share(s)

    def set_capacity(self, capacity: int) -> None:
        with self.ledger.transaction() as t:
            sweep(t)
            mins = sum(s.min_bytes for s in t.active())
            if capacity < mins:
                raise UsageError(f"capacity {capacity} is below the models' guaranteed mins ({mins} bytes)")
            t.capacity = capacity

    def info(self) -> LedgerInfo:
        """The ledger after recovering dead processes' pages."""
        with self.ledger.transaction() as t:
            sweep(t)
        capacity, seq, slots = self.ledger.snapshot()
        models = [_share(s) for s in slots if s.state == ACTIVE]
        used = sum(m.held_bytes for m in models)
        return LedgerInfo(
            device=self.device_id,
            path=str(self.ledger.path),
            capacity_bytes=capacity,
            used_bytes=used,
            free_bytes=capacity - used,
            seq=seq,
            models=models,
        )


class Member:
    """A registered model: asks for bytes before mapping, gives them back after unmapping."""

    def __init__(self, broker: Broker, index: int, name: str) -> None:
        self.broker = broker
        self.index = index
        self.name = name
        self._closed = False
        self.where = str(broker.ledger.path)
        self.mailbox: Mailbox | None = None  # opened when the model first waits for others to give back

    def _open_mailbox(self) -> None:
        if self.mailbox is None:
            with contextlib.suppress(OSError):  # no abstract Unix sockets: given-back pages are freed, made anew
                self.mailbox = Mailbox(self.where, self.index)

    def donee(self) -> tuple[int, int] | None:
        """(slot, pid) of the model waiting for pages that should get this model's, or None: the
        highest-priority waiter (a lock-free snapshot is enough: a stale answer only costs a fresh page)."""
        waiting = [
            s for s in self.broker.ledger.snapshot()[2] if s.state == ACTIVE and s.waiting and s.index != self.index
        ]
        if not waiting:
            return None
        best = max(waiting, key=lambda s: s.priority)
        return best.index, best.pid

    def acquire(self, nbytes: int, *, reclaim: bool = True, timeout_s: float = 0.2) -> Grant | CannotSchedule:
        """Take `nbytes` of the device budget. With `reclaim`, ask lower-priority models to give back and wait
        up to `timeout_s` for them; without it (speculative pre-mapping) only free memory is granted."""
        deadline = time.monotonic() + timeout_s
        while True:
            answer = self._try(nbytes, reclaim)
            if answer is not None:
                return answer
            if time.monotonic() >= deadline:
                with self.broker.ledger.transaction() as t:
                    s = t.slots[self.index]
                    t.update(self.index, waiting=0, refusals=s.refusals + 1)
                    free = t.capacity - t.used()
                return CannotSchedule("other models did not give back in time", nbytes, free)
            time.sleep(POLL_S)

    def _try(self, nbytes: int, reclaim: bool) -> Grant | CannotSchedule | None:
        with self.broker.ledger.transaction() as t:
            sweep(t)
            me = t.slots[self.index]
            if me.state != ACTIVE or me.pid != os.getpid():
                raise UsageError(f"model {self.name!r} is no longer registered with the broker")
            free = t.capacity - t.used()
            if me.held + nbytes > me.max_bytes:
                t.update(self.index, refusals=me.refusals + 1, waiting=0)
                return CannotSchedule(f"{self.name} would pass its max of {me.max_bytes} bytes", nbytes, free)
            if free >= nbytes:
                t.update(self.index, held=me.held + nbytes, grants=me.grants + 1, waiting=0)
                return Grant(nbytes)
            if not reclaim:
                return CannotSchedule("no free device memory for speculative pre-mapping", nbytes, free)
            guaranteed = me.held + nbytes <= me.min_bytes
            victims = sorted(
                (
                    s
                    for s in t.active()
                    if s.index != self.index and s.held > s.min_bytes and (guaranteed or s.priority < me.priority)
                ),
                key=lambda s: (s.priority, s.min_bytes - s.held),
            )
            pending = sum(min(s.reclaim, s.held - s.min_bytes) for s in victims)
            givable = sum(s.held - s.min_bytes for s in victims)
            short = nbytes - free
            if givable < short:
                t.update(self.index, refusals=me.refusals + 1, waiting=0)
                return CannotSchedule(
                    f"cannot schedule now: {free} bytes free and lower-priority models can give back {givable}",
                    nbytes,
                    free,
                )
            ask = short - pending
            for s in victims:
                if ask <= 0:
                    break
                more = min(ask, s.held - s.min_bytes - min(s.reclaim, s.held - s.min_bytes))
                if more > 0:
                    t.update(s.index, reclaim=s.reclaim + more)
                    ask -= more
            self._open_mailbox()  # before the ledger says we wait: donors look for it then
            t.update(self.index, waiting=nbytes)
            return None

    def release(self, nbytes: int) -> None:
        """Give `nbytes` back (after unmapping); settles that much of any reclaim asked of this model."""
        with self.broker.ledger.transaction() as t:
            me = t.slots[self.index]
            if nbytes > me.held:
                raise AssertionError(f"{self.name} releases {nbytes} bytes but holds {me.held}")
            given = min(me.reclaim, nbytes)
            t.update(self.index, held=me.held - nbytes, reclaim=me.reclaim - given, reclaimed=me.reclaimed + given)

    def reclaim_requested(self) -> int:
        """Bytes the broker asks this model to give back (a lock-free read, cheap enough for every free)."""
        return self.broker.ledger.reclaim_of(self.index)

    def share(self) -> ShareInfo:
        return _share(self.broker.ledger.snapshot()[2][self.index])

    def close(self) -> None:
        """Leave the broker; what the model still holds returns to the device budget."""
        if self._closed:
            return
        self._closed = True
        if self.mailbox is not None:
            self.mailbox.close()
        with self.broker.ledger.transaction() as t:
            s = t.slots[self.index]
            if s.state == ACTIVE and s.pid == os.getpid():
                t.update(self.index, state=FREE, held=0, reclaim=0, waiting=0)


def _named(t: Table, name: str, device_id: str) -> Slot:
    for s in t.active():
        if s.name == name:
            return s
    names = ", ".join(s.name for s in t.active()) or "none"
    raise UsageError(f"no live model {name!r} on {device_id} (models: {names})")


def _check_limits(t: Table, name: str, min_bytes: int, max_bytes: int, skip: int | None) -> None:
    if min_bytes > t.capacity:
        raise UsageError(f"{name}: min of {min_bytes} bytes is above the device's {t.capacity} bytes")
    if min_bytes < 0 or max_bytes < min_bytes:
        raise UsageError(f"{name}: need 0 <= min <= max, got min={min_bytes} max={max_bytes}")
    others = sum(s.min_bytes for s in t.active() if s.index != skip and s.name != name)
    if others + min_bytes > t.capacity:
        raise UsageError(
            f"{name}: min of {min_bytes} bytes plus the other models' mins ({others}) exceeds the device's "
            f"{t.capacity} bytes; lower a min with `prism mem limit`"
        )


def _share(s: Slot) -> ShareInfo:
    return ShareInfo(
        name=s.name,
        pid=s.pid,
        priority=s.priority,
        min_bytes=s.min_bytes,
        max_bytes=s.max_bytes,
        held_bytes=s.held,
        reclaim_bytes=s.reclaim,
        waiting_bytes=s.waiting,
        grants=s.grants,
        refusals=s.refusals,
        reclaimed_bytes=s.reclaimed,
    )
