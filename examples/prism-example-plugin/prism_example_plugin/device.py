"""A simulated accelerator: a virtual clock and a utilisation model. No hardware is involved."""

from __future__ import annotations

import math
import time

from prism_core.export import names
from prism_core.models import Device, TelemetrySample

VENDOR = "simulated"


def simulated_devices(count: int = 2) -> list[Device]:
    return [
        Device(
            id=f"{VENDOR}:{i}",
            vendor=VENDOR,
            index=i,
            name=f"Simulated XPU {i} (not real hardware)",
            memory_total_bytes=16 * 2**30,
            simulated=True,
            properties={"note": "from prism-example-plugin; for plugin authors and tests"},
        )
        for i in range(count)
    ]


class SimulatedTiming:
    """Device time is host time scaled by a fixed 'speed-up': marks are monotonic clock readings."""

    SPEEDUP = 4

    def __init__(self, device: Device) -> None:
        self.device = device

    def mark(self) -> int:
        return time.monotonic_ns()

    def elapsed_ns(self, start: int, end: int) -> int | None:
        return max(0, end - start) // self.SPEEDUP

    def release(self, mark: int) -> None:
        return None

    def close(self) -> None:
        return None


class SimulatedTelemetry:
    """Utilisation follows a slow sine wave; the 'frequency' cannot be read, and says so."""

    def __init__(self, device: Device) -> None:
        self.device = device

    def fields(self) -> tuple[str, ...]:
        return (names.SYSTEM_CPU_UTILIZATION, names.SYSTEM_CPU_FREQUENCY)

    def sample(self) -> TelemetrySample:
        now = time.time_ns()
        util = 0.5 + 0.4 * math.sin(now / 1e9 / 10 + self.device.index)
        return TelemetrySample(
            device=self.device.id,
            ts_ns=now,
            values={names.SYSTEM_CPU_UTILIZATION: util},
            unreadable={names.SYSTEM_CPU_FREQUENCY: "a simulated device has no clock to read"},
        )

    def close(self) -> None:
        return None
