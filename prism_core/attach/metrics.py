"""The engine's own Prometheus endpoint (vLLM `vllm:*`, SGLang `sglang:*`), read from outside the process.

Found among the sockets the process listens on: request counts and mean TTFT, TPOT, end to end and queue time
since start and per interval, running and waiting requests, KV-cache usage.
"""

from __future__ import annotations

import functools
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

from prism_core.attach.target import not_ours
from prism_core.errors import UsageError


@functools.cache
def engine_tables() -> dict[str, tuple[Mapping[str, str], Mapping[str, str]]]:
    """Engine name -> (histograms, gauges) of every framework adapter whose engine serves Prometheus metrics."""
    from prism_core.plugins import host

    return {
        a.name: (getattr(a, "metric_histograms", {}), getattr(a, "metric_gauges", {}))
        for a in host().framework_adapters()
        if getattr(a, "metric_histograms", None)
    }


def listening_ports(pid: int) -> list[int]:
    """TCP ports process `pid` listens on (its socket inodes matched against /proc/net/tcp{,6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(set(ports))


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode(errors="replace"))


def scrape(url: str) -> dict[str, float]:
    """One page of samples from a metrics endpoint the user named or we found; a failure is one UsageError."""
    try:
        return parse_prometheus(fetch(url))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UsageError(f"cannot read engine metrics from {url}: {getattr(exc, 'reason', exc)}") from None


def find_metrics(pids: list[int]) -> tuple[str, str] | None:
    """(metrics URL, engine) of the first port of these processes that serves engine metrics, if any."""
    for pid in pids:
        try:
            ports = listening_ports(pid)
        except PermissionError as exc:
            raise not_ours(pid, exc.strerror or "permission denied") from None
        except FileNotFoundError:  # exited meanwhile
            continue
        for port in ports:
            url = f"http://127.0.0.1:{port}/metrics"
            try:
                engine = engine_of(fetch(url).splitlines())
            except (urllib.error.URLError, OSError, ValueError):
                continue
            if engine:
                return url, engine
    return None


def engine_of(names: Iterable[str]) -> str | None:
    """The engine whose metric prefix (`vllm:`, `sglang:`) starts any of these sample names or page lines."""
    prefixes = {f"{engine}:": engine for engine in engine_tables()}
    for name in names:
        for prefix, engine in prefixes.items():
            if name.startswith(prefix):
                return engine
    return None


def parse_prometheus(text: str) -> dict[str, float]:
    """Sample name -> value, summed over label sets (all models of the server together)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, rest = line.rpartition("} ") if "}" in line else line.partition(" ")
        name = name_labels.split("{", 1)[0]
        try:
            value = float(rest.split()[0])
        except (IndexError, ValueError):
            continue
        values[name] = values.get(name, 0.0) + value
    return values


def summarise(engine: str, now: dict[str, float], before: dict[str, float] | None) -> dict[str, object]:
    """Mean latencies and request counts between two scrapes (or since start), and the current gauges."""
    histograms, gauges = engine_tables()[engine]
    out: dict[str, object] = {}
    count_name = next(m for m, f in histograms.items() if f == "e2e_s")  # finished requests
    for metric, field in histograms.items():
        count = now.get(f"{metric}_count", 0.0) - (before or {}).get(f"{metric}_count", 0.0)
        total = now.get(f"{metric}_sum", 0.0) - (before or {}).get(f"{metric}_sum", 0.0)
        out[f"{field}_mean"] = total / count if count > 0 else None
        if metric == count_name:
            out["requests"] = int(count)
    for metric, field in gauges.items():
        if before is None and metric in now:
            out[field] = now[metric]
    return out
