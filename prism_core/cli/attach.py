"""`prism attach PID`: instrument or observe an LLM server that is already running, without restarting it.

A Python 3.14+ target gets the `prism run` bootstrap injected with `sys.remote_exec` into the server and each
Python process below it (prism_core/attach/inject.py): full capture and export, until `prism attach --detach PID`.
An older target is observed from outside: the engine's metrics endpoint (request latencies, queue, KV usage) and
py-spy stack samples (each stage's share of the engine loop), with what that leaves out said in every report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import cast

from prism_core.attach.export import ReportExport
from prism_core.attach.inject import REMOTE_EXEC, run_everywhere
from prism_core.attach.metrics import engine_of, find_metrics, scrape, summarise
from prism_core.attach.sampling import DEFAULT_RATE_HZ, EngineThread, sample, sampler
from prism_core.attach.target import Target, engine_candidates, inspect_target, python_descendants, python_version
from prism_core.cli.run import add_export_option, check_specs
from prism_core.errors import UsageError
from prism_core.plugins import host

INSIDE = "`prism run` or PRISM_ENABLE=1 at start, or `prism attach` on Python 3.14+"
OUTSIDE = (
    f"from outside the process: no per-batch timings, workload or request records (those need Prism inside: {INSIDE})"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("attach", help="instrument (Python 3.14+) or observe a running LLM server, no restart")
    p.add_argument("pid", type=int, help="process id of the server")
    add_export_option(p, "injected: as `prism run --export`; from outside: otlp[+grpc|+http]://HOST:PORT or jsonl:PATH")
    p.add_argument("--detach", action="store_true", help="remove what `prism attach` injected")
    p.add_argument("--outside", action="store_true", help="observe from outside even where injection is possible")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds each process has to run the injected script")
    p.add_argument(
        "--metrics-url", help="the engine's Prometheus endpoint (default: found among the processes' sockets)"
    )
    p.add_argument("--interval", type=float, default=5.0, help="seconds between reports (default 5)")
    p.add_argument("--count", type=int, default=0, help="stop after this many reports (default: until Ctrl-C)")
    p.add_argument("--rate", type=int, default=DEFAULT_RATE_HZ, help="stack samples per second (default 100)")
    p.add_argument("--no-sample", action="store_true", help="metrics only, no stack sampling")
    p.add_argument("--json", action="store_true", help="one JSON object per report")
    p.set_defaults(func=cmd_attach)


def cmd_attach(args: argparse.Namespace) -> int:
    target = inspect_target(args.pid)
    for name in ("interval", "rate", "timeout"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name} must be positive")
    version = python_version(target)
    injectable = version is not None and version >= REMOTE_EXEC
    shown = ".".join(map(str, version)) if version else "an unknown version"
    if args.detach:
        if not injectable:
            raise UsageError(
                f"nothing to detach: process {target.pid} runs Python {shown}; attach injects into 3.14+ only"
            )
        return _inject(target, "detach", [], args)
    if injectable and not args.outside:
        return _inject(target, "attach", [str(s) for s in check_specs(args.export)], args)
    sink = ReportExport(args.export)
    try:
        return _observe(target, args, sink)
    finally:
        sink.close()


def _inject(target: Target, action: str, specs: list[str], args: argparse.Namespace) -> int:
    reports = run_everywhere(engine_candidates(target.pid), action, specs, args.timeout)
    for report in reports:
        if args.json:
            print(json.dumps(report), flush=True)
        else:
            installed = cast(list[str], report.get("installed") or [])
            names = ", ".join(installed) or "no framework imported yet (hooked for later)"
            print(f"prism: {action}ed pid {report['pid']}: {names}", flush=True)
    if action == "attach" and not args.json:
        print(f"prism: `prism attach --detach {target.pid}` removes it", flush=True)
    return 0


def _observe(target: Target, args: argparse.Namespace, sink: ReportExport) -> int:
    pids = python_descendants(target.pid)
    found = (args.metrics_url, None) if args.metrics_url else find_metrics(pids)
    url, engine = found if found else (None, None)
    stages = {f: s for a in host().framework_adapters() for f, s in getattr(a, "sampled_stages", {}).items()}
    sampling = not args.no_sample and sampler() is not None
    if url is None and not sampling:
        why = "--no-sample" if args.no_sample else "py-spy is not installed (pip install 'prism-xpu[attach]')"
        raise UsageError(f"process {target.pid} serves no vLLM or SGLang metrics and {why}; pass --metrics-url")
    missing = OUTSIDE
    if url is None:
        missing += "; no request latencies (no engine metrics endpoint found: --metrics-url)"
    if not sampling:
        missing += "; no stage shares (" + ("--no-sample)" if args.no_sample else "py-spy is not installed)")
    previous = scrape(url) if url else {}
    engine = engine or engine_of(previous)
    if not args.json:
        reads = " and ".join(x for x in (url and f"metrics {url}", sampling and "py-spy stack samples") if x)
        print(f"prism: observing pid {target.pid} through {reads}; {missing}", flush=True)
    reports = 0
    while not args.count or reports < args.count:
        threads: list[EngineThread] = []
        if sampling:
            threads = sample(target.pid, args.interval, stages, args.rate)
        else:
            time.sleep(args.interval)
        now = scrape(url) if url else {}
        if url is None and not threads and reports == 0:
            raise UsageError(
                f"process {target.pid} serves no engine metrics and ran none of the engine functions Prism knows "
                f"({', '.join(sorted({a.name for a in host().framework_adapters()}))}) in {args.interval:g} s; "
                "pass --metrics-url, or attach while it serves requests"
            )
        since = summarise(engine, now, None) if url and engine else None
        last = summarise(engine, now, previous) if url and engine else None
        report = {"pid": target.pid, "engine": engine, "metrics_url": url, "interval_s": args.interval}
        report |= {"since_start": since, "interval": last, "stages": [t.to_dict() for t in threads]}
        report["missing"] = missing
        sink.publish(report)
        if args.json:
            print(json.dumps(report), flush=True)
        else:
            _print_text(args.interval, since, last, threads)
        previous = now
        reports += 1
    return 0


def _print_text(
    interval: float, since: dict[str, object] | None, last: dict[str, object] | None, threads: list[EngineThread]
) -> None:
    if since is not None and last is not None:
        print(f"since start {_fmt(since)} | last {interval:g} s {_fmt(last)}", flush=True)
    for t in threads:
        shares = " ".join(f"{s}={v:.0%}" for s, v in t.shares().items())
        print(f"  pid {t.pid} thread {t.tid} ({t.name}): in stages {t.busy:.0%} of {t.samples} samples: {shares}")
    if not threads and since is not None:
        print("  no engine iteration ran while sampled")
    sys.stdout.flush()


def _fmt(summary: dict[str, object]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items())
