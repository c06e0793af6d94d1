"""A small real workload with named stages, for exercising detection and diagnosis without an LLM engine.

Each iteration runs three synthetic stages, timed with perf_counter_ns (wall) and thread_time_ns (the thread's
CPU time, what the cpu timing backend records as device time): `prepare` (pure-Python work, holds the
GIL), `forward` (a NumPy matrix multiply) and `postprocess` (a 1 ms sleep, like waiting on I/O). It is NOT an
LLM engine: records it makes say engine "stageloop" and model "synthetic-stages". Telemetry comes from the real
sampler passed in, read on a background thread.
"""

from __future__ import annotations

import os
import time

import numpy as np

from prism_core.capture.telemetry import TelemetryFeed, TelemetrySampler
from prism_core.models import BatchRecord, StageTiming, TelemetrySample

ENGINE = "stageloop"
MODEL = "synthetic-stages"


def run_stage_loop(
    seconds: float, sampler: TelemetrySampler | None = None, *, interval_s: float = 0.1, size: int = 192
) -> tuple[list[BatchRecord], list[TelemetrySample]]:
    """Iterate for `seconds`; return the batch records and the telemetry sampled meanwhile."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size))
    samples: list[TelemetrySample] = []
    feed = TelemetryFeed(sampler, samples.append, interval_s) if sampler is not None else None
    batches: list[BatchRecord] = []
    device = sampler.device.id if sampler is not None else "cpu:0"
    offset = time.time_ns() - time.perf_counter_ns()
    deadline = time.perf_counter() + seconds
    step = 0
    try:
        while time.perf_counter() < deadline:
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            sum(i * i for i in range(20_000))
            t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            b = a @ a
            b @ a
            t2, c2 = time.perf_counter_ns(), time.thread_time_ns()
            time.sleep(0.001)
            t3, c3 = time.perf_counter_ns(), time.thread_time_ns()
            step += 1
            batches.append(
                BatchRecord(
                    start_ns=t0 + offset,
                    duration_ns=t3 - t0,
                    mode="decode",
                    batch_size=8,
                    decode_tokens=8,
                    avg_input_len=64.0,
                    max_input_len=64,
                    avg_output_len=float(step % 64),
                    max_output_len=step % 64,
                    kv_tokens=8 * (64 + step % 64),
                    model=MODEL,
                    engine=ENGINE,
                    device=device,
                    pid=os.getpid(),
                    stages={
                        "prepare": StageTiming(wall_ns=t1 - t0, device_ns=c1 - c0),
                        "forward": StageTiming(wall_ns=t2 - t1, device_ns=c2 - c1),
                        "postprocess": StageTiming(wall_ns=t3 - t2, device_ns=c3 - c2),
                    },
                )
            )
    finally:
        if feed is not None:
            feed.close()
    return batches, samples
