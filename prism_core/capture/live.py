"""Rolling statistics over recent records, and their rich rendering: what `prism top` and `prism demo` show."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

import numpy as np
from rich.console import Group
from rich.table import Table

from prism_core.capture.stages import CANONICAL_STAGES
from prism_core.models import BatchRecord, Record, RequestRecord

WINDOW_BATCHES = 1_000
WINDOW_REQUESTS = 500


class LiveStats:
    """Keeps the last batches and requests; thread-safe `add` (collector thread) and `render` (UI thread)."""

    def __init__(self) -> None:
        self.batches: deque[BatchRecord] = deque(maxlen=WINDOW_BATCHES)
        self.requests: deque[RequestRecord] = deque(maxlen=WINDOW_REQUESTS)
        self.total_batches = 0
        self.total_requests = 0
        self._lock = threading.Lock()

    def add(self, records: Iterable[Record]) -> None:
        with self._lock:
            for r in records:
                if isinstance(r, BatchRecord):
                    self.batches.append(r)
                    self.total_batches += 1
                elif isinstance(r, RequestRecord):
                    self.requests.append(r)
                    self.total_requests += 1

    def stage_share(self) -> dict[str, float]:
        """Each stage's share of the summed batch time in the window."""
        with self._lock:
            batches = list(self.batches)
        total = sum(b.duration_ns for b in batches)
        sums: dict[str, int] = {}
        for b in batches:
            for stage, t in b.stages.items():
                sums[stage] = sums.get(stage, 0) + t.wall_ns
        order = sorted(sums, key=lambda s: CANONICAL_STAGES.index(s) if s in CANONICAL_STAGES else 99)
        return {s: sums[s] / total for s in order} if total else {}

    def tokens_per_s(self) -> float:
        with self._lock:
            batches = list(self.batches)
        if len(batches) < 2:
            return 0.0
        span = batches[-1].start_ns + batches[-1].duration_ns - batches[0].start_ns
        tokens = sum(b.decode_tokens + b.prefill_tokens for b in batches)
        return tokens / (span / 1e9) if span > 0 else 0.0

    def render(self, title: str = "prism top") -> Group:
        with self._lock:
            batches = list(self.batches)
            requests = list(self.requests)
        stages = Table("stage", "share", "bar", title=f"{title}: where batch time went (last {len(batches)} batches)")
        for stage, share in self.stage_share().items():
            stages.add_row(stage, f"{share:6.1%}", "█" * round(share * 40))
        latency = Table("mode", "batches", "p50 ms", "p90 ms", "p99 ms", title="batch latency")
        for mode in ("prefill", "decode", "mixed"):
            values = [b.duration_ns / 1e6 for b in batches if b.mode == mode]
            if values:
                p50, p90, p99 = np.percentile(values, [50, 90, 99])
                latency.add_row(mode, str(len(values)), f"{p50:.2f}", f"{p90:.2f}", f"{p99:.2f}")
        req = Table("metric", "p50", "p90", "requests", title="requests")
        for name, values in (
            ("TTFT ms", [r.ttft_s * 1e3 for r in requests if r.ttft_s is not None]),
            ("TPOT ms", [r.tpot_s * 1e3 for r in requests if r.tpot_s is not None]),
            ("e2e ms", [r.e2e_s * 1e3 for r in requests]),
        ):
            if values:
                p50, p90 = np.percentile(values, [50, 90])
                req.add_row(name, f"{p50:.1f}", f"{p90:.1f}", str(len(values)))
        footer = (
            f"throughput {self.tokens_per_s():,.0f} tokens/s · {self.total_batches} batches, "
            f"{self.total_requests} requests seen"
        )
        return Group(stages, latency, req, footer)
