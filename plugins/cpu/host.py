"""Facts about this host from /proc and /sys: the cpu device."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from prism_core.models import Device

PROC = Path("/proc")
SYS_NODES = Path("/sys/devices/system/node")
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out: dict[str, int] = {}
    for line in (PROC / "meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def memory_limit_bytes() -> int:
    """Host memory, or the cgroup's limit where one is set lower (containers)."""
    total = meminfo()["MemTotal"]
    try:
        raw = CGROUP_MEMORY_MAX.read_text().strip()
    except OSError:
        return total
    return min(total, int(raw)) if raw.isdigit() else total


def cpu_model() -> str:
    try:
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numa_nodes() -> int:
    try:
        return sum(1 for p in SYS_NODES.iterdir() if p.name.startswith("node") and p.name[4:].isdigit())
    except OSError:
        return 1


def cpu_device() -> Device:
    usable = len(os.sched_getaffinity(0))
    return Device(
        id="cpu:0",
        vendor="cpu",
        index=0,
        name=cpu_model(),
        memory_total_bytes=memory_limit_bytes(),
        properties={
            "logical_cpus": os.cpu_count() or usable,
            "usable_cpus": usable,
            "numa_nodes": numa_nodes(),
            "arch": platform.machine(),
        },
    )
