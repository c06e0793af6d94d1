"""The bounded event buffer between the engine's thread and the collector thread.

A `collections.deque` whose length is checked before each append: append and popleft are atomic under the GIL,
so any number of engine threads may push while the collector drains, with no lock on the hot path. When the
collector falls behind the buffer stops growing at `capacity` events and counts what it turned away; memory
stays bounded (about 120 bytes per event) and the engine never waits.
"""

from __future__ import annotations

from collections import deque
from typing import Any

# Event kinds, the first field of every event tuple.
BEGIN = 0
END = 1
ITERATION_BEGIN = 2
ITERATION_END = 3
REQUESTS = 4

Event = tuple[int, Any, int, int, int]
"""(kind, stage name or payload, perf_counter_ns, timing-backend mark, thread id)."""

DEFAULT_CAPACITY = 65_536


class EventRing:
    """Bounded multi-producer, single-consumer event buffer that never blocks and counts drops."""

    __slots__ = ("capacity", "dropped", "events")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.events: deque[Event] = deque()
        self.dropped = 0

    def push(self, event: Event) -> bool:
        """Keep `event` unless the buffer is full (then count it as dropped). Never blocks."""
        if len(self.events) < self.capacity:
            self.events.append(event)
            return True
        self.dropped += 1
        return False

    def drain(self, limit: int | None = None) -> list[Event]:
        """Take up to `limit` events (all by default), oldest first. Collector thread only."""
        events = self.events
        n = len(events) if limit is None else min(limit, len(events))
        return [events.popleft() for _ in range(n)]

    def __len__(self) -> int:
        return len(self.events)
