"""`prism attach PID`: observe an LLM server that is already running, without restarting it.

What it can do depends on the target. This release reads the engine's own Prometheus endpoint (vLLM `vllm:*`,
SGLang `sglang:*`), found among the sockets the process listens on: request counts and mean TTFT, TPOT, end to
end and queue time since start and per interval, running and waiting requests, KV-cache usage. It says plainly
what that leaves out: per-batch stage timings and per-request records need Prism inside the process
(`prism run`, or `PRISM_ENABLE=1` for vLLM, both at start). Injection into a running interpreter
(`sys.remote_exec`, Python 3.14) is not implemented yet. Nothing is ever left in the target.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from prism_core.errors import UsageError

MISSING = (
    "read from the engine's metrics endpoint: no per-batch stage timings and no per-request records "
    "(those need Prism in the process: `prism run` or PRISM_ENABLE=1 at start)"
)
ENGINE_PREFIXES = ("vllm:", "sglang:")

# Prometheus histograms (seconds) read per engine -> field; means are sum/count over the window.
HISTOGRAMS = {
    "vllm": {
        "vllm:time_to_first_token_seconds": "ttft_s",
        "vllm:request_time_per_output_token_seconds": "tpot_s",
        "vllm:e2e_request_latency_seconds": "e2e_s",
        "vllm:request_queue_time_seconds": "queue_s",
    },
    "sglang": {
        "sglang:time_to_first_token_seconds": "ttft_s",
        "sglang:inter_token_latency_seconds": "tpot_s",
        "sglang:e2e_request_latency_seconds": "e2e_s",
        "sglang:queue_time_seconds": "queue_s",
    },
}
GAUGES = {
    "vllm": {
        "vllm:num_requests_running": "running",
        "vllm:num_requests_waiting": "waiting",
        "vllm:kv_cache_usage_perc": "kv_cache_usage",
    },
    "sglang": {
        "sglang:num_running_reqs": "running",
        "sglang:num_queue_reqs": "waiting",
        "sglang:token_usage": "kv_cache_usage",
    },
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("attach", help="observe a running vLLM or SGLang server (its metrics endpoint), no restart")
    p.add_argument("pid", type=int, help="process id of the server")
    p.add_argument("--metrics-url", help="the engine's Prometheus endpoint (default: found among PID's sockets)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between reports (default 5)")
    p.add_argument("--count", type=int, default=0, help="stop after this many reports (default: until Ctrl-C)")
    p.add_argument("--json", action="store_true", help="one JSON object per report")
    p.set_defaults(func=cmd_attach)


@dataclass(frozen=True)
class Target:
    pid: int
    exe: str
    cmdline: list[str]


def inspect_target(pid: int) -> Target:
    """The process, if it exists, is ours to read and runs Python; else one clear UsageError."""
    proc = Path(f"/proc/{pid}")
    if pid <= 0 or not proc.is_dir():
        raise UsageError(f"no process with id {pid}")
    try:
        exe = os.readlink(proc / "exe")
        cmdline = [a for a in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0") if a]
    except PermissionError as exc:
        raise UsageError(f"process {pid} is not ours to trace ({exc.strerror}): run as its user or as root") from None
    except FileNotFoundError:
        raise UsageError(f"process {pid} exited") from None
    if "python" not in Path(exe).name and not any("python" in Path(a).name for a in cmdline[:1]):
        raise UsageError(f"process {pid} ({Path(exe).name}) is not a Python process")
    return Target(pid, exe, cmdline)


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


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode(errors="replace"))


def find_metrics(pid: int) -> tuple[str, str]:
    """(metrics URL, engine) of the first port of `pid` that serves engine metrics."""
    try:
        ports = listening_ports(pid)
    except PermissionError as exc:
        raise UsageError(f"process {pid} is not ours to trace ({exc.strerror}): run as its user or as root") from None
    for port in ports:
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            engine = engine_of(_get(url))
        except (urllib.error.URLError, OSError, ValueError):
            continue
        if engine:
            return url, engine
    raise UsageError(
        f"process {pid} serves no vLLM or SGLang metrics on its ports {ports or '(none)'}; pass --metrics-url"
    )


def engine_of(text: str) -> str | None:
    """The engine whose metric prefix appears in a Prometheus text page, if any."""
    for line in text.splitlines():
        for prefix in ENGINE_PREFIXES:
            if line.startswith(prefix):
                return prefix[:-1]
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
    out: dict[str, object] = {}
    count_name = next(m for m, f in HISTOGRAMS[engine].items() if f == "e2e_s")  # finished requests
    for metric, field in HISTOGRAMS[engine].items():
        count = now.get(f"{metric}_count", 0.0) - (before or {}).get(f"{metric}_count", 0.0)
        total = now.get(f"{metric}_sum", 0.0) - (before or {}).get(f"{metric}_sum", 0.0)
        out[f"{field}_mean"] = total / count if count > 0 else None
        if metric == count_name:
            out["requests"] = int(count)
    for metric, field in GAUGES[engine].items():
        if before is None and metric in now:
            out[field] = now[metric]
    return out


def cmd_attach(args: argparse.Namespace) -> int:
    target = inspect_target(args.pid)
    if args.interval <= 0:
        raise UsageError("--interval must be positive")
    if args.metrics_url:
        url, engine = args.metrics_url, None
    else:
        url, engine = find_metrics(target.pid)
    previous = parse_prometheus(_get(url))
    engine = engine or next((p[:-1] for p in ENGINE_PREFIXES for k in previous if k.startswith(p)), "vllm")
    if not args.json:
        print(f"prism: attached to {engine} pid {target.pid} through {url}; {MISSING}", flush=True)
    reports = 0
    while not args.count or reports < args.count:
        time.sleep(args.interval)
        now = parse_prometheus(_get(url))
        since, last = summarise(engine, now, None), summarise(engine, now, previous)
        if args.json:
            report = {"pid": target.pid, "engine": engine, "metrics_url": url, "interval_s": args.interval}
            print(json.dumps({**report, "since_start": since, "interval": last, "missing": MISSING}), flush=True)
        else:
            print(f"since start {_fmt(since)} | last {args.interval:g} s {_fmt(last)}", flush=True)
        previous = now
        reports += 1
    return 0


def _fmt(summary: dict[str, object]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items())
