"""Helpers for telemetry samplers: read each field on its own, keep why a field failed, turn counters into rates.

A vendor call that fails for one field (not supported on this card, no permission, a -1 from pyrsmi) must
cost that field only, and must show up as `unreadable` with the vendor's reason, never as a zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from prism_core.models import TelemetrySample


class Unreadable(Exception):
    """Raised inside a reader for a failure the vendor reports by value (a -1, an empty field), with the reason."""


def describe(exc: BaseException) -> str:
    """One line naming the vendor's error class and message, e.g. 'NVMLError_NotSupported: Not Supported'."""
    text = str(exc).strip()
    if isinstance(exc, Unreadable):
        return text or "unreadable"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Readings:
    """Collects one sample: `read` each field (or a group sharing one vendor call), then `sample()`.

    `errors` are the exception types that mean "this field failed" (the vendor's error base class, OSError...);
    anything else is a bug and propagates. `Unreadable` is always caught.
    """

    def __init__(self, errors: tuple[type[BaseException], ...] = ()) -> None:
        self.errors: tuple[type[BaseException], ...] = (Unreadable, *errors)
        self.values: dict[str, float] = {}
        self.unreadable: dict[str, str] = {}

    def read(self, name: str, fn: Callable[[], float]) -> None:
        self.read_all((name,), lambda: (fn(),))

    def read_all(self, names: Sequence[str], fn: Callable[[], Sequence[float]]) -> None:
        """Read several fields from one vendor call; a failure marks them all unreadable with the same reason."""
        try:
            got = fn()
        except self.errors as exc:
            self.fail(names, describe(exc))
            return
        for name, value in zip(names, got, strict=True):
            self.values[name] = float(value)

    def fail(self, names: Sequence[str], reason: str) -> None:
        for name in names:
            self.unreadable[name] = reason

    def sample(self, device: str) -> TelemetrySample:
        return TelemetrySample(device=device, ts_ns=time.time_ns(), values=self.values, unreadable=self.unreadable)


def not_negative(value: float, what: str) -> float:
    """pyrsmi and pyACL report failure as -1: turn it into `Unreadable` instead of a number."""
    if value < 0:
        raise Unreadable(f"{what} returned {value:g} (the library's failure value)")
    return value


class CounterRates:
    """Rates of monotonically increasing counters (bytes, KiB...) between successive readings.

    Prime it at sampler start so the first sample already has a rate; a counter that went backwards (driver
    reset, wrap) restarts from the new reading instead of giving a negative rate.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, tuple[float, float]] = {}

    def prime(self, counters: Mapping[str, float]) -> None:
        now = self._clock()
        for name, value in counters.items():
            self._last[name] = (now, value)

    def rates(self, counters: Mapping[str, float]) -> dict[str, float]:
        """Per-second rates since the previous reading; raises `Unreadable` for a counter with no usable base."""
        now = self._clock()
        out: dict[str, float] = {}
        missing = []
        for name, value in counters.items():
            prev = self._last.get(name)
            self._last[name] = (now, value)
            if prev is None or now <= prev[0] or value < prev[1]:
                missing.append(name)
                continue
            out[name] = (value - prev[1]) / (now - prev[0])
        if missing:
            raise Unreadable(f"no earlier reading of {', '.join(missing)} to take a rate from; next sample has it")
        return out
