"""`prism bench capture --json`: the figures BENCHMARKS.md quotes come out, from real runs (values not judged)."""

from __future__ import annotations

import json
import subprocess

import pytest

pytest.importorskip("transformers")


@pytest.mark.slow
def test_bench_capture_prints_every_figure(prism_cmd: list[str]) -> None:
    r = subprocess.run([*prism_cmd, "bench", "capture", "--runs", "1", "--rounds", "1", "--json"],
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    figures = json.loads(r.stdout)
    assert 0 < figures["stage_pair_us_p50"] < 1_000
    assert figures["throughput_ratio"] > 0 and len(figures["throughput_ratio_pairs"]) == 1
    assert figures["same_tokens"] is True  # capture never changes what the engine generates
    assert figures["spans_received"] > 0 and figures["collector_cpu_us_per_batch"] > 0
    # The in-process A/B: 20 pairs of rounds, capture on in half of them.
    assert figures["in_process_pairs"] == 20 and figures["throughput_ratio_in_process"] > 0
    low, high = figures["throughput_ratio_in_process_iqr"]
    assert low <= figures["throughput_ratio_in_process"] <= high
