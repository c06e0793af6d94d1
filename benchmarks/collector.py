"""Collector CPU per batch on a synthetic vLLM-like stream, device time summed as stages end vs resolved later.

    .venv/bin/python benchmarks/collector.py [--runs 20] [--batches 4000]

Each run records `--batches` iterations (schedule, forward with nested prepare_inputs, sample, postprocess; a
workload of 8 decode requests; 2 finished requests every 4th step) into a ring on the CPU timing backend, then
times one collector pass over them into a JSONL exporter (thread CPU time, single thread, so the GIL and the
engine are out of the picture). Runs alternate between the two ways the assembler can get device time from a
clock backend: `immediate` (summed as stages end) and `intervals` (kept, resolved and released later, as for
device events). Prints the median microseconds per batch of each and their ratio.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from pathlib import Path

from prism_core.capture.buffer import EventRing
from prism_core.capture.collector import Collector
from prism_core.capture.recorder import RingRecorder
from prism_core.capture.workload import RequestTiming, Workload
from prism_core.export.base import ExportSpec
from prism_core.plugins import host

INPUTS = [100 + i for i in range(8)]
OUTPUTS = [10 + i for i in range(8)]


def _workload() -> Workload:
    return Workload.of_batch(
        model="m", engine="vllm", inputs=INPUTS, outputs=OUTPUTS, prefill_tokens=0, decode_tokens=8, kv_tokens=900
    )


def _finished(now: int) -> list[RequestTiming]:
    r = RequestTiming(now - 10**9, now - 9 * 10**8, now - 8 * 10**8, now, 100, 32, "length", "m", "vllm")
    return [r, r]


def run(batches: int, immediate: bool, folder: Path) -> float:
    """Collector CPU microseconds per batch for one pass over `batches` recorded iterations."""
    h = host()
    timing = h.timing_backend(h.device("cpu:0"))
    assert timing is not None
    ring = EventRing(capacity=64 * batches)
    rec = RingRecorder(ring, timing)
    collector = Collector(ring, timing, [h.exporter(ExportSpec.parse(f"jsonl:{folder / 'records.jsonl'}"))])
    collector.assembler.immediate = immediate
    for b in range(batches):
        rec.iteration_begin()
        for stage in ("schedule", "forward", "prepare_inputs"):
            rec.begin(stage)
            if stage == "schedule":
                rec.end(stage)
        rec.end("prepare_inputs")
        rec.end("forward")
        for stage in ("sample", "postprocess"):
            rec.begin(stage)
            rec.end(stage)
        rec.iteration_end(_workload)
        if b % 4 == 0:
            rec.requests_done(functools.partial(_finished, time.perf_counter_ns()))
    started = time.thread_time_ns()
    collector.flush(final=True)
    spent = time.thread_time_ns() - started
    collector.close()
    return spent / batches / 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--batches", type=int, default=4000)
    a = p.parse_args()
    out: dict[str, list[float]] = {"immediate": [], "intervals": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.runs):
            for immediate in (True, False) if i % 2 else (False, True):
                out["immediate" if immediate else "intervals"].append(run(a.batches, immediate, Path(tmp)))
    medians = {k: round(statistics.median(v), 1) for k, v in out.items()}
    print(json.dumps({"us_per_batch": medians, "ratio": round(medians["immediate"] / medians["intervals"], 3)}))


if __name__ == "__main__":
    main()
