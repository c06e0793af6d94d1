"""`prism demo`: a real CPU engine on a replayed trace, the live view, and a report folder named at the end."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.live import Live

from prism_core.capture.live import LiveStats
from prism_core.cli.output import console
from prism_core.errors import UsageError
from prism_core.export import ExportSpec
from prism_core.models import BatchRecord, Record, RequestRecord
from prism_core.settings import data_dir


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="a real CPU engine on a replayed trace: live view and a report with plots")
    p.add_argument("--out", type=Path, help="report folder (default ./prism-report-DATE-TIME)")
    p.add_argument(
        "--trace", type=Path, default=data_dir() / "azure_llm_2023_conv.csv", help="Azure LLM trace CSV to replay"
    )
    p.add_argument("--requests", type=int, default=192, help="requests to replay (default 192)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds the arrivals are spread over (default 60)")
    p.add_argument("--model", choices=("auto", "tiny", "smollm2"), default="auto", help="auto: SmolLM2 if installed")
    p.add_argument("--no-live", action="store_true", help="no live view (also off when stdout is not a terminal)")
    p.add_argument(
        "--fault", default="cpu.compute_squeeze:1", help="NAME[:INTENSITY] injected mid-run, or none (%(default)s)"
    )
    p.add_argument(
        "--fault-at",
        type=float,
        metavar="S",
        help="seconds into the replay, and never before the detector has learnt (default 60%% of --duration)",
    )
    p.add_argument("--fault-s", type=float, metavar="S", help="how long it stays on (default 25%% of --duration)")
    p.add_argument("--warmup", type=int, default=120, help="decode batches the detector learns from (default 120)")
    p.set_defaults(func=cmd_demo)


class _Keep:
    """An exporter that keeps records for the report and feeds the live view."""

    def __init__(self, stats: LiveStats) -> None:
        self.spec = ExportSpec("memory", "")
        self.stats = stats
        self.batches: list[BatchRecord] = []
        self.requests: list[RequestRecord] = []

    def export(self, records: Sequence[Record]) -> None:
        self.stats.add(records)
        for r in records:
            if isinstance(r, BatchRecord):
                self.batches.append(r)
            elif isinstance(r, RequestRecord):
                self.requests.append(r)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


def cmd_demo(args: argparse.Namespace) -> int:
    from prism_core.capture.session import CaptureSession
    from prism_core.demo import load_trace, write_report
    from prism_core.demo.engine import load_model, serve
    from prism_core.demo.watch import DemoWatch, parse_fault
    from prism_core.plugins import host

    if args.requests < 1 or args.duration <= 0:
        raise UsageError("--requests must be >= 1 and --duration > 0")
    if args.warmup < 10:
        raise UsageError("--warmup must be at least 10 batches")
    fault_at = args.duration * 0.6 if args.fault_at is None else args.fault_at
    fault_s = args.duration * 0.25 if args.fault_s is None else args.fault_s
    if fault_at < 0 or fault_s <= 0:
        raise UsageError("--fault-at must be >= 0 and --fault-s > 0")
    fault = parse_fault(args.fault, fault_at, fault_s, sorted(host().fault_injectors()))
    trace = load_trace(args.trace, requests=args.requests, duration_s=args.duration, max_gap_s=1.0)
    out = args.out or Path(f"prism-report-{datetime.now():%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]prism demo[/]: loading the model, replaying {len(trace)} requests from {args.trace.name}")
    model, model_name = load_model(args.model)
    import torch

    # One intra-op thread: with a fault's worker threads on a small machine, a second torch thread contending for
    # a core makes every batch wait on it, and the demo's decode batches slowed tenfold and more in a trial here.
    torch.set_num_threads(1)
    stats = LiveStats()
    keep = _Keep(stats)
    h = host()
    exporters = [keep, h.exporter(f"jsonl:{out / 'records.jsonl'}"), h.exporter(f"chrome:{out / 'trace.json'}")]
    session = CaptureSession(exporters, plugin_host=h, stage_faults=True)
    skipped = session.install_all("transformers")
    if skipped:
        session.close()
        raise UsageError("; ".join(f"{k}: {v.reason}" for k, v in skipped.items()))
    watch = DemoWatch(session, out, fault, warmup=args.warmup, escalate=30, say=console.print)
    live = not args.no_live and sys.stdout.isatty()
    progress = {"done": 0, "total": len(trace)}
    stop = threading.Event()
    started = time.perf_counter()

    def on_progress(done: int, total: int) -> None:
        progress["done"] = done

    def view() -> None:
        title = f"prism demo · {model_name}"
        if live:
            with Live(stats.render(title), console=console, refresh_per_second=4) as screen:
                while not stop.wait(0.5):
                    screen.update(stats.render(f"{title} · {progress['done']}/{progress['total']} requests done"))
        else:
            while not stop.wait(5.0):
                console.print(f"{progress['done']}/{progress['total']} requests done, {stats.total_batches} batches")

    viewer = threading.Thread(target=view, name="prism-demo-view", daemon=True)
    viewer.start()
    try:
        watch.start()
        finished = serve(model, trace, on_progress=on_progress)
    finally:
        detection = watch.finish()
        session.close()
        stop.set()
        viewer.join(2)
    facts = {
        "model": model_name,
        "trace": str(args.trace),
        "requests_replayed": len(trace),
        "requests_finished": finished,
        "wall_s": round(time.perf_counter() - started, 2),
        "device": session.collector.device_id,
        "events_dropped": session.collector.stats().events_dropped,
    }
    write_report(out, keep.batches, keep.requests, {**facts, **detection})
    _chart(out, watch, detection)
    console.print(stats.render(f"prism demo · {model_name} · final"))
    _say_detection(detection)
    files = (
        "stages.png, control_chart.png, records.jsonl, trace.json, summary.json"
        if watch.online
        else ("stages.png, records.jsonl, trace.json, summary.json")
    )
    console.print(f"report: {out.resolve()} ({files})", soft_wrap=True)
    return 0 if finished == len(trace) else 1


def _chart(out: Path, watch: Any, detection: dict[str, Any]) -> None:
    from prism_core.demo.report import plot_control_chart

    online = watch.online
    if online is None:
        return
    fault = detection.get("fault")
    window = (fault["onset_ns"], fault["end_ns"]) if fault else None
    alerts = [a for a, _ in online.diagnosed]
    history = online.history or []
    title = (
        f"{len(history)} decode batches scored, {online.detector.alerts} alert(s); "
        f"red lines: the {len(alerts)} diagnosed"
    )
    plot_control_chart(history, out / "control_chart.png", fault=window, alerts=alerts, title=title)


def _say_detection(detection: dict[str, Any]) -> None:
    det = detection.get("detector")
    if det is None:
        return
    if not det["ready"]:
        console.print(f"detector: still learning at the end (needs {det['warmup_batches']} decode batches); "
                      "replay more requests (--requests, --duration) to see it alert")  # fmt: skip
        return
    console.print(f"detector: threshold {det['threshold']:.3f}, {det['alerts']} alert(s)")
    diagnosis = detection.get("diagnosis")
    if diagnosis and diagnosis["suspects"]:
        top = diagnosis["suspects"][0]
        console.print(f"diagnosis of the fault's alert: {top['where']} x {top['resource']} "
                      f"({top['stage_ms_normal']:.2f} -> {top['stage_ms_abnormal']:.2f} ms)")  # fmt: skip
    if det["operator_traces"]:
        console.print(f"operator timing after the diagnosis: {det['operator_traces'][0]}", soft_wrap=True)
