"""`prism bench capture`: the hot-path cost of a stage pair, throughput with and without `prism run`, and a soak.

The throughput ratio runs the same generate() program (prism_plugins.frameworks.transformers.workload) as plain
child processes and under `prism run --export otlp+grpc://` to a real receiver on loopback, in pairs whose order
alternates (plain first, then traced first, ...) so drift on a shared machine hits both sides alike. Each pair
gives one ratio; the figure is their median, with the spread and the load average beside it.

Beside it, `throughput_ratio_in_process` alternates capture on and off round by round inside one such program
(`--ab-export`): a figure with far less spread, that leaves out what merely loading Prism costs a process.

The soak serves the same program continuously under `prism run` with OTLP export and samples the child's RSS
and the `prism.capture.events_dropped` counter it exports, then fits the RSS slope.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from prism_core.capture.adapters import FrameworkAdapter
from prism_core.capture.buffer import EventRing
from prism_core.capture.recorder import RingRecorder
from prism_core.errors import UsageError
from prism_core.export import names as n
from prism_core.plugins import host

if TYPE_CHECKING:
    from prism_core.capture.session import CaptureSession

WORKLOAD = "prism_plugins.frameworks.transformers.workload"
T = TypeVar("T")


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


def alternate(
    session: CaptureSession, adapter: FrameworkAdapter, pairs: int, measure: Callable[[], T]
) -> dict[str, list[T]]:
    """`pairs` pairs of rounds in one process, `adapter` installed in one round of each and uninstalled in the
    other, the order alternating per pair: what `measure()` returns `with` and `without` capture, pair by pair."""
    out: dict[str, list[T]] = {"with": [], "without": []}
    for i in range(pairs):
        for captured in (True, False) if i % 2 else (False, True):
            if captured:
                session.install(adapter)
            out["with" if captured else "without"].append(measure())
            session.uninstall(adapter)
    return out


def quartiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def mean_ci95(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% confidence interval (normal approximation: pairs are independent, many of them)."""
    mean = statistics.fmean(values)
    half = 1.96 * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def _prism_run(address: str) -> list[str]:
    return [sys.executable, "-m", "prism_core", "run", "--export", f"otlp+grpc://{address}", "--"]


def _workload(prefix: list[str], args: list[str]) -> dict[str, Any]:
    cmd = [*prefix, sys.executable, "-m", WORKLOAD, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def capture(
    *, runs: int = 6, batch: int = 8, input_len: int = 128, output_len: int = 64, rounds: int = 5, model: str = "tiny"
) -> dict[str, Any]:
    from prism_core.export.receiver import OtlpReceiver

    if runs < 1 or rounds < 1:
        raise UsageError("--runs and --rounds must be >= 1")
    pair = stage_pair_us()
    shape = ["--batch", str(batch), "--input", str(input_len), "--output", str(output_len), "--model", model]
    args = [*shape, "--rounds", str(rounds)]
    plain: list[float] = []
    traced: list[float] = []
    digests: set[str] = set()
    collector_us: list[float] = []
    load_before = load_average()
    with OtlpReceiver(keep_spans=False) as receiver:
        prism = _prism_run(receiver.address)
        for i in range(runs):
            order = (([], plain), (prism, traced)) if i % 2 == 0 else ((prism, traced), ([], plain))
            for prefix, into in order:
                result = _workload(prefix, args)
                into.append(result["tokens_per_s"])
                digests.add(result["digest"])
                if prefix:  # the traced child pushed its counters at exit: this run's collector cost
                    cpu = receiver.counter_value(n.PRISM_CAPTURE_COLLECTOR_CPU)
                    batches = receiver.counter_value(n.PRISM_CAPTURE_BATCHES)
                    if cpu is not None and batches:
                        collector_us.append(cpu * 1e6 / batches)
        spans = receiver.span_count
        # As many pairs as the separate runs had rounds (at least 20): each pair is two generate() calls.
        pairs = ["--rounds", str(max(runs * rounds, 20))]
        ab = _workload([], [*shape, *pairs, "--ab-export", f"otlp+grpc://{receiver.address}"])
    ratios = sorted(t / p for t, p in zip(traced, plain, strict=True))
    ab_ratios = sorted(t / p for t, p in zip(ab["with"], ab["without"], strict=True))
    return {
        "stage_pair_us_p50": round(statistics.median(pair), 3),
        "stage_pair_us_min": round(min(pair), 3),
        "throughput_ratio": round(statistics.median(ratios), 4),
        "throughput_ratio_pairs": [round(r, 4) for r in ratios],
        "throughput_ratio_spread": round(ratios[-1] - ratios[0], 4),
        "throughput_ratio_of_medians": round(statistics.median(traced) / statistics.median(plain), 4),
        "throughput_ratio_in_process": round(statistics.median(ab_ratios), 4),
        "throughput_ratio_in_process_iqr": [round(q, 4) for q in quartiles(ab_ratios)],
        "in_process_pairs": len(ab_ratios),
        "collector_cpu_us_per_batch": round(statistics.median(collector_us), 1) if collector_us else None,
        "tokens_per_s_plain": [round(x, 1) for x in plain],
        "tokens_per_s_prism_run_otlp": [round(x, 1) for x in traced],
        "same_tokens": len(digests) == 1,
        "spans_received": spans,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "cpus": os.cpu_count(),
        "workload": {
            "model": model,
            "batch": batch,
            "input": input_len,
            "output": output_len,
            "rounds": rounds,
            "runs": runs,
        },
    }


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a live process (Linux /proc), or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return 0.0
    ts = [t for t, _ in points]
    vs = [v for _, v in points]
    mt, mv = statistics.fmean(ts), statistics.fmean(vs)
    den = sum((t - mt) ** 2 for t in ts)
    return 60.0 * sum((t - mt) * (v - mv) for t, v in zip(ts, vs, strict=True)) / den if den else 0.0


def soak(
    *, seconds: float, sample_s: float = 5.0, batch: int = 8, input_len: int = 128, output_len: int = 64
) -> dict[str, Any]:
    """Serve for `seconds` under `prism run` + OTLP; sample RSS and exported drop counts; fit the RSS slope.

    The first fifth of the serving time (at least 30 s) is warm-up (allocator pools, the first batches' caches) and
    is left out of the slope.
    """
    from prism_core.export.receiver import OtlpReceiver

    if seconds < 10:
        raise UsageError(f"--soak must be at least 10 seconds, got {seconds}")
    args = ["--batch", str(batch), "--input", str(input_len), "--output", str(output_len), "--rounds", "1"]
    samples: list[dict[str, Any]] = []
    load_before = load_average()
    with OtlpReceiver(keep_spans=False) as receiver:
        cmd = [*_prism_run(receiver.address), sys.executable, "-m", WORKLOAD, *args, "--seconds", str(seconds)]
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        start = time.monotonic()
        while child.poll() is None:
            resident = rss_bytes(child.pid)
            if resident:  # 0 until the exec'd interpreter has mapped anything
                samples.append(
                    {
                        "t_s": round(time.monotonic() - start, 1),
                        "rss_mib": round(resident / 2**20, 2),
                        "events_dropped": receiver.counter_value(n.PRISM_CAPTURE_DROPPED),
                        "batches": receiver.counter_value(n.PRISM_CAPTURE_BATCHES),
                        "spans": receiver.span_count,
                    }
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(sample_s)
        out, err = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"soak program failed ({child.returncode}): {err.strip()[-500:]}")
        receiver.wait_for(lambda r: r.span_count > 0, 5.0)
        final_dropped = receiver.counter_value(n.PRISM_CAPTURE_DROPPED)
        final_batches = receiver.counter_value(n.PRISM_CAPTURE_BATCHES)
        spans = receiver.span_count
    result = json.loads(out.strip().splitlines()[-1])
    # Serving starts when the first batches are exported (after imports and the model load); warm-up counts from
    # there.
    serving = next((s["t_s"] for s in samples if s["batches"]), samples[0]["t_s"] if samples else 0.0)
    warm = max(30.0, seconds / 5)
    steady: list[tuple[float, float]] = [(s["t_s"], s["rss_mib"]) for s in samples if s["t_s"] >= serving + warm]
    rss: list[float] = [s["rss_mib"] for s in samples]
    return {
        "seconds": round(result["seconds"], 1),
        "tokens_per_s": round(result["tokens_per_s"], 1),
        "rss_mib_first": rss[0] if rss else None,
        "rss_mib_after_warmup": steady[0][1] if steady else None,
        "rss_mib_last": rss[-1] if rss else None,
        "rss_mib_max": max(rss) if rss else None,
        "rss_slope_mib_per_min": round(slope_per_minute(steady), 4),
        "serving_started_s": serving,
        "warmup_s": warm,
        "events_dropped": final_dropped,
        "batches_exported": final_batches,
        "spans_received": spans,
        "samples": samples,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "workload": {"batch": batch, "input": input_len, "output": output_len, "sample_s": sample_s},
    }
