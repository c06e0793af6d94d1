"""Host telemetry from /proc: utilisation, frequency, memory, load, run queue."""

from __future__ import annotations

import time
from pathlib import Path

from prism_core.export import names
from prism_core.models import Device, TelemetrySample
from prism_plugins.cpu.host import PROC, meminfo, memory_limit_bytes

CPUFREQ = Path("/sys/devices/system/cpu")


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from the first line of /proc/stat."""
    fields = [int(x) for x in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user/nice
    return total - idle, total


def _loadavg() -> list[str]:
    """'0.05 0.05 0.02 1/75 2526': load averages, then runnable/total tasks, then the last pid."""
    return (PROC / "loadavg").read_text().split()


def _frequency_hz() -> float:
    """Mean current frequency: cpufreq where the kernel exposes it, else /proc/cpuinfo's 'cpu MHz'."""
    freqs = [int(p.read_text()) * 1e3 for p in CPUFREQ.glob("cpu[0-9]*/cpufreq/scaling_cur_freq")]
    if not freqs:
        freqs = [
            float(line.partition(":")[2]) * 1e6
            for line in (PROC / "cpuinfo").read_text().splitlines()
            if line.startswith("cpu MHz")
        ]
    if not freqs:
        raise OSError("neither cpufreq nor /proc/cpuinfo reports a frequency")
    return sum(freqs) / len(freqs)


class ProcTelemetry:
    """Reads /proc on each `sample()`; utilisation is over the time since the previous sample."""

    FIELDS = (
        names.SYSTEM_CPU_UTILIZATION,
        names.SYSTEM_CPU_FREQUENCY,
        names.SYSTEM_CPU_LOAD_1M,
        names.PRISM_CPU_RUN_QUEUE,
        names.SYSTEM_MEMORY_USAGE,
        names.SYSTEM_MEMORY_LIMIT,
    )

    def __init__(self, device: Device) -> None:
        self.device = device
        self._last = _cpu_times()

    def fields(self) -> tuple[str, ...]:
        return self.FIELDS

    def sample(self) -> TelemetrySample:
        values: dict[str, float] = {}
        unreadable: dict[str, str] = {}

        def read(name: str, fn: object) -> None:
            try:
                values[name] = float(fn())  # type: ignore[operator]
            except (OSError, ValueError, KeyError, IndexError, ZeroDivisionError) as exc:
                unreadable[name] = f"{type(exc).__name__}: {exc}"

        read(names.SYSTEM_CPU_UTILIZATION, self._utilization)
        read(names.SYSTEM_CPU_FREQUENCY, _frequency_hz)
        read(names.SYSTEM_CPU_LOAD_1M, lambda: _loadavg()[0])
        read(names.PRISM_CPU_RUN_QUEUE, lambda: _loadavg()[3].partition("/")[0])
        read(names.SYSTEM_MEMORY_USAGE, lambda: (m := meminfo())["MemTotal"] - m["MemAvailable"])
        read(names.SYSTEM_MEMORY_LIMIT, memory_limit_bytes)
        return TelemetrySample(device=self.device.id, ts_ns=time.time_ns(), values=values, unreadable=unreadable)

    def _utilization(self) -> float:
        busy, total = _cpu_times()
        d_busy, d_total = busy - self._last[0], total - self._last[1]
        if d_total <= 0:
            raise ZeroDivisionError("no CPU time has passed since the previous sample")
        self._last = (busy, total)
        return d_busy / d_total

    def close(self) -> None:
        return None
