"""Time sharing on an executor: activate models on demand, deactivate idle ones, take turns when memory is short.

The activation cost (weights over host-to-device bandwidth plus a warm start) comes from the cost model.
"""

from __future__ import annotations

from prism_core.schedule.kvmemory import KvMemory
from prism_core.schedule.policies import SharingMode
from prism_core.schedule.simstate import Recorder
from prism_core.schedule.slots import ACTIVATING, ACTIVE, INACTIVE, Slot

QUANTUM_S = 5.0  # time sharing: how long a model keeps the device while others wait


class Lifecycle(KvMemory):
    """The lifecycle side of an executor (a mixin, like `KvMemory`)."""

    mode: SharingMode
    rec: Recorder

    def _lifecycle(self) -> None:
        for slot in self.slots.values():
            if slot.state == ACTIVATING and slot.ready_at <= self.clock:
                slot.state = ACTIVE
                slot.active_since = self.clock
        if self.mode.max_active == 1:
            self._time_share()
        elif self.mode.memory == "elastic":
            self._on_demand()

    def _on_demand(self) -> None:
        timeout = self.mode.idle_timeout_s
        if timeout is not None:
            for slot in self.slots.values():
                if slot.state == ACTIVE and slot.idle and self.clock - slot.last_busy > timeout:
                    self._set_state(slot, INACTIVE)
        for slot in self.slots.values():
            if slot.draining and not slot.running:
                slot.draining = False
                self._set_state(slot, INACTIVE)
        waiting = [s for s in self.slots.values() if s.state == INACTIVE and s.queue]
        for slot in sorted(waiting, key=lambda s: s.queue.heap[0][0]):
            if self._balloon(slot.spec.weight_bytes + slot.min_kv_bytes):
                self._activate(slot)
            elif self.clock - slot.queue.heap[0][2].arrival_s > QUANTUM_S:
                self._yield_device()

    def _yield_device(self) -> None:
        """A model has waited a quantum for memory that busy models hold: the longest-resident busy model stops
        admitting and is deactivated once its running requests finish (time sharing among busy models)."""
        if any(s.draining for s in self.slots.values()):
            return
        resident = [s for s in self.slots.values() if s.state == ACTIVE and self.clock - s.active_since > QUANTUM_S]
        if resident:
            min(resident, key=lambda s: s.active_since).draining = True

    def _balloon(self, need: float, just_one: bool = False) -> bool:
        """Deactivate idle resident models, least recently busy first, until `need` bytes are free.

        With just_one, deactivate at most one and say whether one was.
        """
        if self.mode.max_active is not None or self.mode.memory != "elastic":
            return self._free_bytes() >= need
        for victim in sorted((s for s in self.slots.values() if s.state == ACTIVE and s.idle), key=_lru):
            if self._free_bytes() >= need:
                break
            self._set_state(victim, INACTIVE)
            if just_one:
                return True
        return self._free_bytes() >= need

    def _time_share(self) -> None:
        current = next((s for s in self.slots.values() if s.state != INACTIVE), None)
        others = [s for s in self.slots.values() if s is not current and s.queue]
        if current is not None:
            if not others:
                current.draining = False
                return
            if current.state == ACTIVE and not current.draining and self.clock - current.active_since > QUANTUM_S:
                current.draining = True
            if not (current.idle or (current.draining and not current.running)):
                return
            current.draining = False
            self._set_state(current, INACTIVE)
        if others:
            self._activate(min(others, key=lambda s: s.queue.heap[0][0]))

    def _activate(self, slot: Slot) -> None:
        self._set_state(slot, ACTIVATING)
        slot.ready_at = self.clock + slot.activation_s
        self.rec.activations += 1

    def _set_state(self, slot: Slot, state: int) -> None:
        was = slot.state != INACTIVE
        now = state != INACTIVE
        self.weights += slot.spec.weight_bytes * (now - was)
        slot.state = state
        if state == ACTIVE:
            slot.active_since = self.clock

    def _resident_count(self) -> int:
        return sum(1 for s in self.slots.values() if s.state != INACTIVE)


def _lru(slot: Slot) -> float:
    return slot.last_busy
