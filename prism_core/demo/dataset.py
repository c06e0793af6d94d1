"""`prism dataset make`: a labelled batch-record set from the real transformers engine under scheduled CPU faults.

The Azure trace is replayed (arrivals squeezed into the run's length, lengths divided and capped: see replay.py)
into continuous batching on the tiny Llama, captured by Prism. A fault schedule runs beside it: a normal lead-in,
then for each (fault, intensity) a normal gap and the fault. Every batch that ran, for any part of it, while a
fault was on gets label 1. The host's telemetry (the device plugin's sampler, every 0.25 s) goes beside the
batches into telemetry.jsonl, for diagnosis. Everything is written into a temporary sibling folder that is renamed
into place at the end, so an interrupted run leaves no half-written set.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prism_core.capture.telemetry import TelemetryFeed
from prism_core.errors import UsageError
from prism_core.export import ExportSpec
from prism_core.faults.base import check_intensity
from prism_core.faults.runner import FaultSchedule, ScheduledFault
from prism_core.faults.timeline import FaultEvent, FaultTimeline, label_at
from prism_core.models import BatchRecord, Record, TelemetrySample

TELEMETRY_INTERVAL_S = 0.25  # as the online diagnosis samples it

CSV_COLUMNS = (
    "start_ns",
    "duration_ns",
    "mode",
    "batch_size",
    "prefill_tokens",
    "avg_input_len",
    "max_input_len",
    "avg_output_len",
    "max_output_len",
    "label",
    "job",
)


@dataclass(frozen=True, slots=True)
class Plan:
    lead_s: float  # normal traffic before the first fault (what a detector warms up on)
    fault_s: float
    gap_s: float  # normal traffic before each fault
    tail_s: float  # normal traffic after the last fault
    faults: tuple[tuple[str, float], ...]  # (name, intensity), in run order

    def schedule(self) -> list[ScheduledFault]:
        out, at = [], self.lead_s
        for i, (name, intensity) in enumerate(self.faults):
            if i:
                at += self.gap_s
            out.append(ScheduledFault(at_s=at, name=name, duration_s=self.fault_s, intensity=intensity))
            at += self.fault_s
        return out

    @property
    def total_s(self) -> float:
        return self.lead_s + len(self.faults) * self.fault_s + max(0, len(self.faults) - 1) * self.gap_s + self.tail_s


def parse_faults(text: str, intensities: Sequence[float], known: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """`cpu` (every cpu.* fault) or a comma list of NAME or NAME:INTENSITY; bare names run at each intensity."""
    out: list[tuple[str, float]] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        name, _, level = item.partition(":")
        names = sorted(n for n in known if n.startswith("cpu.")) if name == "cpu" else [name]
        for n in names:
            if n not in known:
                raise UsageError(f"unknown fault {n!r} (see `prism faults list`)")
            try:
                levels = [float(level)] if level else list(intensities)
            except ValueError:
                raise UsageError(f"fault {item!r}: intensity must be a number in (0, 1]") from None
            for x in levels:
                check_intensity(x)
                out.append((n, x))
    if not out:
        raise UsageError("--faults names no fault (e.g. 'cpu' or 'cpu.compute_squeeze:0.5,cpu.stage_delay')")
    return tuple(out)


class _Keep:
    """An exporter that keeps the batch records in memory (written, labelled, at the end)."""

    def __init__(self) -> None:
        self.spec = ExportSpec("memory", "")
        self.batches: list[BatchRecord] = []

    def export(self, records: Sequence[Record]) -> None:
        self.batches.extend(r for r in records if isinstance(r, BatchRecord))

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


def write_set(
    folder: Path, batches: Sequence[BatchRecord], events: Sequence[FaultEvent], job: str, split_ns: int
) -> dict[str, int]:
    """batches.jsonl and batches.csv (both with `label`, 1 when the batch overlapped a fault, and `job`);
    train.csv holds the batches that started before `split_ns` (the normal lead-in: what a detector warms up
    on), eval.csv the rest. Returns row counts."""
    # A batch is abnormal when any part of it ran under a fault: one that began just before the onset and was
    # stalled by it (a GC storm holds the interpreter for hundreds of ms) is a faulty batch, not a normal one.
    labels = [label_at(list(events), b.start_ns, b.start_ns + b.duration_ns) for b in batches]
    with (folder / "batches.jsonl").open("w", encoding="utf-8") as f:
        for b, lab in zip(batches, labels, strict=True):
            f.write(json.dumps({**b.model_dump(mode="json"), "label": lab, "job": job}) + "\n")
    rows = list(zip(batches, labels, strict=True))
    _write_csv(folder / "batches.csv", rows, job)
    _write_csv(folder / "train.csv", [r for r in rows if r[0].start_ns < split_ns], job)
    _write_csv(folder / "eval.csv", [r for r in rows if r[0].start_ns >= split_ns], job)
    return {
        "batches": len(batches),
        "abnormal": sum(labels),
        "decode": sum(b.mode == "decode" for b in batches),
        "train_rows": sum(b.start_ns < split_ns for b in batches),
    }


def _write_csv(path: Path, rows: Sequence[tuple[BatchRecord, int]], job: str) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for b, lab in rows:
            w.writerow(
                [
                    b.start_ns,
                    b.duration_ns,
                    b.mode,
                    b.batch_size,
                    b.prefill_tokens,
                    b.avg_input_len,
                    b.max_input_len,
                    b.avg_output_len,
                    b.max_output_len,
                    lab,
                    job,
                ]
            )


def make_dataset(
    trace: Path,
    out: Path,
    plan: Plan,
    *,
    requests_per_s: float = 2.0,
    length_divisor: int = 32,
    max_input: int = 96,
    max_output: int = 48,
    output_divisor: int = 1,
    max_gap_s: float = 1.0,
    model_choice: str = "tiny",
    threads: int | None = None,
) -> dict[str, Any]:
    """Replay `trace` for `plan.total_s` seconds under the fault plan; write the set to `out` (atomically). The
    engine runs `threads` torch intra-op threads, by default one, which leaves the other cores to the host's own work
    (Prism's collector, the OS), as a GPU server has cores to spare: with every core busy, any wake-up on the machine
    stalls an engine thread, and 1.2-1.5% of bare forward passes took over 1.5x the median (BENCHMARKS.md)."""
    from prism_core.capture.session import CaptureSession
    from prism_core.demo.engine import load_model, serve
    from prism_core.demo.replay import load_trace
    from prism_core.plugins import host

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty folder; pick a new --out")
    if not out.parent.is_dir():
        raise UsageError(f"folder {out.parent} does not exist")
    requests = max(1, round(requests_per_s * plan.total_s))
    replay = load_trace(
        trace,
        requests=requests,
        duration_s=plan.total_s,
        length_divisor=length_divisor,
        max_input=max_input,
        max_output=max_output,
        output_divisor=output_divisor,
        max_gap_s=max_gap_s,
    )
    h = host()
    faults = h.fault_injectors()
    model, model_name = load_model(model_choice)
    import torch

    if threads is None:
        threads = 1
    torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        timeline = FaultTimeline(work / "faults.jsonl")
        keep = _Keep()
        session = CaptureSession([keep], plugin_host=h, stage_faults=True)
        skipped = session.install_all("transformers")
        if skipped:
            session.close()
            raise UsageError("; ".join(f"{k}: {v.reason}" for k, v in skipped.items()))
        schedule = FaultSchedule(faults, plan.schedule(), timeline)
        samples: list[TelemetrySample] = []  # host telemetry beside the batches: what diagnosis ranks resources by
        sampler = h.telemetry_sampler(session.timing.device, TELEMETRY_INTERVAL_S)
        feed = TelemetryFeed(sampler, samples.append, TELEMETRY_INTERVAL_S) if sampler is not None else None
        started = time.perf_counter()
        try:
            schedule.start()
            finished = serve(model, replay, timeout_s=plan.total_s * 3 + 60)
        finally:
            schedule.stop()
            if feed is not None:
                feed.close()
                feed.sampler.close()
            session.close()
        wall_s = time.perf_counter() - started
        first = min((e.onset_ns for e in timeline.events), default=time.time_ns())
        split_ns = first - int(plan.gap_s * 1e9)  # eval.csv opens with normal traffic, as between faults
        counts = write_set(work, keep.batches, timeline.events, trace.stem, split_ns)
        (work / "telemetry.jsonl").write_text("".join(t.model_dump_json() + "\n" for t in samples), encoding="utf-8")
        counts["telemetry_samples"] = len(samples)
        meta = {
            "trace": str(trace),
            "model": model_name,
            "threads": threads,
            "requests_replayed": len(replay),
            "scaling": {
                "length_divisor": length_divisor,
                "output_divisor": output_divisor,
                "max_input": max_input,
                "max_output": max_output,
                "max_gap_s": max_gap_s,
            },
            "requests_finished": finished,
            "wall_s": round(wall_s, 2),
            "plan": {**asdict(plan), "faults": [list(f) for f in plan.faults]},
            "faults_run": len(timeline.events),
            "events_dropped": session.collector.stats().events_dropped,
            **counts,
        }
        (work / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return meta
