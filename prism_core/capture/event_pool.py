"""Device timing with a pool of pre-created events: the TimingBackend every event-based accelerator plugin uses.

A vendor plugin supplies the five event primitives (`EventApi`: create, record on the engine's current stream,
a non-blocking "done?" query, elapsed time, destroy); `EventPoolTiming` supplies the rest, identically for CUDA,
HIP and ACL:

- `mark()` (engine thread, hot path) pops a free pre-created event and records it. It never creates an event,
  never blocks and never raises: an empty pool or a failed record gives `DROPPED` and counts it.
- `elapsed_ns()` (collector thread) returns None until the device has passed both events, then the time.
- `release()` (collector thread) returns an event to the pool, and does the pool's upkeep off the hot path:
  growth in chunks while the free list is low (up to `maximum` events), and reclaim of marks that nobody
  released (an iteration the engine discarded) once they have been out for two sweeps of `reclaim_after_s`.

A handle is `generation << SLOT_BITS | slot`: a handle whose slot has been handed out again since is stale and
never resolves, so a late or double `release` cannot put one event in two places.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from prism_core.models import Device

log = logging.getLogger("prism.capture")

SLOT_BITS = 24
SLOT_MASK = (1 << SLOT_BITS) - 1
DROPPED = -1
"""The mark `mark()` returns when it could not record: it never resolves (the collector then gives up on it)."""


class DeviceTimingError(RuntimeError):
    """A vendor event call failed with something other than "not ready yet"."""

    def __init__(self, vendor: str, call: str, code: int, name: str) -> None:
        super().__init__(f"{vendor}: {call} failed with {name} ({code})")
        self.vendor = vendor
        self.call = call
        self.code = code
        self.name = name


def unpack(vendor: str, result: object, call: str) -> Any:
    """Unpack a cuda-python / hip-python result `(error, value...)`: the value (or values), or DeviceTimingError.

    Both bindings use 0 for success (CUDA_SUCCESS, hipSuccess); the error enum's name goes into the message.
    """
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise DeviceTimingError(vendor, call, int(err), getattr(err, "name", str(err)))
    return values[0] if len(values) == 1 else tuple(values)


class EventApi(Protocol):
    """The vendor primitives behind `EventPoolTiming`. Errors are raised as `DeviceTimingError`."""

    vendor: str

    def create(self) -> object:
        """A new timing-capable event (called at start and during growth, never from `mark`)."""
        ...

    def record(self, event: object) -> None:
        """Record `event` on the stream the engine's thread is using now. Must not synchronise anything."""
        ...

    def done(self, event: object) -> bool:
        """True once the device has passed `event`, False while it has not. Never blocks."""
        ...

    def elapsed_ms(self, start: object, end: object) -> float:
        """Device milliseconds between two done events."""
        ...

    def destroy(self, event: object) -> None: ...

    def close(self) -> None:
        """Release what the API holds besides events (a retained context, a device reference)."""
        ...


class CurrentStream:
    """The handle of torch's current stream on the calling thread, for `EventApi.record`; 0 (the default stream)
    while torch is not imported or has no device of this kind.

    torch is looked up in sys.modules, never imported: importing it from the engine's hot path would stall the
    engine for seconds. Once torch is there, each call costs one `current_stream()` (the engine may switch
    streams between stages).
    """

    def __init__(self, module: str = "cuda", attribute: str = "cuda_stream") -> None:
        self.module = module
        self.attribute = attribute
        self._fn: Callable[[], int] | None = None

    def __call__(self) -> int:
        fn = self._fn
        if fn is None:
            torch = sys.modules.get("torch")
            if torch is None:
                return 0
            fn = self._fn = self._resolve(torch)
        return fn()

    def _resolve(self, torch: object) -> Callable[[], int]:
        mod = getattr(torch, self.module, None)
        if mod is None or not mod.is_available():
            return _default_stream
        current_stream = mod.current_stream
        attribute = self.attribute
        return lambda: int(getattr(current_stream(), attribute))


def _default_stream() -> int:
    return 0


@dataclass(slots=True)
class PoolStats:
    """Counters for `prism.capture.*` metrics and for tests; approximate under concurrent marks."""

    created: int = 0
    dropped: int = 0
    record_errors: int = 0
    query_errors: int = 0
    reclaimed: int = 0
    last_error: str | None = None


class EventPoolTiming:
    """A `TimingBackend` over a vendor's events; see the module docstring for the pool's rules."""

    def __init__(
        self,
        device: Device,
        api: EventApi,
        *,
        initial: int = 1024,
        maximum: int = 16_384,
        grow_by: int = 256,
        low_water: int = 128,
        reclaim_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < initial <= maximum <= SLOT_MASK:
            raise ValueError(f"need 0 < initial ({initial}) <= maximum ({maximum}) <= {SLOT_MASK}")
        self.device = device
        self.api = api
        self.stats = PoolStats()
        self.maximum = maximum
        self.grow_by = grow_by
        self.low_water = low_water
        self.reclaim_after_s = reclaim_after_s
        self._clock = clock
        self._events: list[object] = []
        self._gen: list[int] = []
        self._out = bytearray()  # 1 while a slot's event is handed out
        self._free: list[int] = []  # list.pop/append are atomic under the GIL: mark() takes no lock
        self._lock = threading.Lock()  # upkeep and close only, never taken by mark()
        self._closed = False
        self._last_sweep = clock()
        self._suspects: dict[int, int] = {}
        self._errors_logged: set[str] = set()
        try:
            self._grow(initial)
        except BaseException:
            self.close()
            raise

    @property
    def size(self) -> int:
        """Events the pool holds, handed out or free."""
        return len(self._events)

    @property
    def free(self) -> int:
        return len(self._free)

    # Engine thread ----------------------------------------------------------------------------------------

    def mark(self) -> int:
        try:
            slot = self._free.pop()
        except IndexError:
            self.stats.dropped += 1
            return DROPPED
        gen = self._gen[slot] + 1
        self._gen[slot] = gen
        self._out[slot] = 1
        try:
            self.api.record(self._events[slot])
        except Exception as exc:  # a timing failure must never fail the engine's step
            self._out[slot] = 0
            self._free.append(slot)
            self.stats.dropped += 1
            self.stats.record_errors += 1
            self._note("record", exc)
            return DROPPED
        return gen << SLOT_BITS | slot

    # Collector thread -------------------------------------------------------------------------------------

    def elapsed_ns(self, start: int, end: int) -> int | None:
        a, b = self._live(start), self._live(end)
        if a is None or b is None:
            return None
        try:
            # end first: on one stream, end done implies start done, so the common "not yet" costs one query
            if not (self.api.done(b) and self.api.done(a)):
                return None
            ms = self.api.elapsed_ms(a, b)
        except Exception as exc:  # reported once and counted; the collector's timeout then gives up on the pair
            self.stats.query_errors += 1
            self._note("query", exc)
            return None
        return max(0, round(ms * 1_000_000))

    def release(self, mark: int) -> None:
        if mark < 0:
            return
        slot = mark & SLOT_MASK
        with self._lock:
            if self._closed or slot >= len(self._gen) or self._gen[slot] != mark >> SLOT_BITS or not self._out[slot]:
                return  # stale, double or foreign: the slot is no longer this mark's
            self._out[slot] = 0
            self._free.append(slot)
            self._upkeep()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._free.clear()  # from here on mark() drops
            events, self._events = self._events, []
            for event in events:
                try:
                    self.api.destroy(event)
                except Exception as exc:  # destroy the rest regardless
                    self._note("destroy", exc)
            try:
                self.api.close()
            except Exception as exc:
                self._note("close", exc)

    # Internals --------------------------------------------------------------------------------------------

    def _live(self, mark: int) -> object | None:
        """The event behind a mark, or None for a dropped, stale or post-close mark (it will never resolve)."""
        if mark < 0 or self._closed:
            return None
        slot = mark & SLOT_MASK
        if slot >= len(self._gen) or self._gen[slot] != mark >> SLOT_BITS:
            return None
        return self._events[slot]

    def _grow(self, n: int) -> None:
        for _ in range(min(n, self.maximum - len(self._events))):
            event = self.api.create()
            slot = len(self._events)
            self._events.append(event)
            self._gen.append(0)
            self._out.append(0)
            self.stats.created += 1
            self._free.append(slot)  # published last: mark() may take it at once

    def _upkeep(self) -> None:
        if len(self._free) < self.low_water and len(self._events) < self.maximum:
            try:
                self._grow(self.grow_by)
            except Exception as exc:  # keep the events we have; marks drop when they run out
                self._note("create", exc)
                self.maximum = len(self._events)
        now = self._clock()
        if now - self._last_sweep >= self.reclaim_after_s:
            self._last_sweep = now
            self._sweep()

    def _sweep(self) -> None:
        """Reclaim slots out, with the same generation, at this sweep and the previous one."""
        out = {slot: self._gen[slot] for slot in range(len(self._out)) if self._out[slot]}
        for slot, gen in out.items():
            if self._suspects.get(slot) == gen:
                self._out[slot] = 0
                self._free.append(slot)
                self.stats.reclaimed += 1
        self._suspects = {s: g for s, g in out.items() if self._out[s]}

    def _note(self, what: str, exc: Exception) -> None:
        self.stats.last_error = f"{what}: {exc}"
        key = f"{what}:{type(exc).__name__}:{getattr(exc, 'name', '')}"
        if key not in self._errors_logged:
            self._errors_logged.add(key)
            log.warning("%s device timing: %s failed (further such failures not shown): %s", self.device.id, what, exc)
