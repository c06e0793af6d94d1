"""`prism bench capture`: the hot-path cost of a stage pair, and throughput with and without `prism run`.

The throughput ratio runs the same generate() program (prism_plugins.frameworks.transformers.workload) as plain
child processes and under `prism run --export otlp+grpc://` to a real receiver on loopback, alternating the two
so drift on a shared machine hits both alike; the ratio is of the medians.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from prism_core.capture.buffer import EventRing
from prism_core.capture.recorder import RingRecorder
from prism_core.errors import UsageError
from prism_core.plugins import host

WORKLOAD = "prism_plugins.frameworks.transformers.workload"


def stage_pair_us(*, pairs: int = 20_000, repeats: int = 25) -> list[float]:
    """Microseconds per begin/end pair on the CPU timing backend, one figure per repeat."""
    h = host()
    timing = h.timing_backend(h.device("cpu:0"))
    if timing is None:
        raise UsageError("the cpu plugin gives no timing backend (see `prism plugins`)")
    ring = EventRing(capacity=2 * pairs)
    rec = RingRecorder(ring, timing)
    begin, end = rec.begin, rec.end
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(pairs):
            begin("forward")
            end("forward")
        out.append((time.perf_counter_ns() - t0) / pairs / 1e3)
        ring.drain()
    return out


def _workload(prefix: list[str], args: list[str]) -> dict[str, Any]:
    cmd = [*prefix, sys.executable, "-m", WORKLOAD, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def capture(
    *, runs: int = 3, batch: int = 8, input_len: int = 128, output_len: int = 64, rounds: int = 5
) -> dict[str, Any]:
    from prism_core.testing.otlp import OtlpReceiver

    pair = stage_pair_us()
    args = ["--batch", str(batch), "--input", str(input_len), "--output", str(output_len), "--rounds", str(rounds)]
    plain: list[float] = []
    traced: list[float] = []
    digests: set[str] = set()
    with OtlpReceiver() as receiver:
        prism = [sys.executable, "-m", "prism_core", "run", "--export", f"otlp+grpc://{receiver.address}", "--"]
        for _ in range(runs):
            for prefix, into in (([], plain), (prism, traced)):
                result = _workload(prefix, args)
                into.append(result["tokens_per_s"])
                digests.add(result["digest"])
        spans = len(receiver.spans)
    return {
        "stage_pair_us_p50": round(statistics.median(pair), 3),
        "stage_pair_us_min": round(min(pair), 3),
        "throughput_ratio": round(statistics.median(traced) / statistics.median(plain), 4),
        "tokens_per_s_plain": [round(x, 1) for x in plain],
        "tokens_per_s_prism_run_otlp": [round(x, 1) for x in traced],
        "same_tokens": len(digests) == 1,
        "spans_received": spans,
        "workload": {"batch": batch, "input": input_len, "output": output_len, "rounds": rounds, "runs": runs},
    }
