"""The demo's report: per-stage breakdown plot (PNG), summary JSON; the JSONL and Chrome trace come from export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from prism_core.capture.stages import CANONICAL_STAGES
from prism_core.models import BatchRecord, RequestRecord


def summary(batches: list[BatchRecord], requests: list[RequestRecord]) -> dict[str, Any]:
    def pct(values: list[float]) -> dict[str, float] | None:
        if not values:
            return None
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return {"p50": float(p50), "p90": float(p90), "p99": float(p99)}

    total = sum(b.duration_ns for b in batches)
    stage_ns: dict[str, int] = {}
    for b in batches:
        for s, t in b.stages.items():
            stage_ns[s] = stage_ns.get(s, 0) + t.wall_ns
    return {
        "batches": len(batches),
        "requests": len(requests),
        "stage_share": {s: v / total for s, v in stage_ns.items()} if total else {},
        "batch_ms": {
            m: pct([b.duration_ns / 1e6 for b in batches if b.mode == m]) for m in ("prefill", "decode", "mixed")
        },
        "ttft_ms": pct([r.ttft_s * 1e3 for r in requests if r.ttft_s is not None]),
        "tpot_ms": pct([r.tpot_s * 1e3 for r in requests if r.tpot_s is not None]),
        "e2e_ms": pct([r.e2e_s * 1e3 for r in requests]),
    }


def plot(batches: list[BatchRecord], path: Path) -> None:
    """Left: mean time per stage by forward mode (stacked). Right: every batch's stages over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in CANONICAL_STAGES if any(s in b.stages for b in batches)]
    modes = [m for m in ("prefill", "mixed", "decode") if any(b.mode == m for b in batches)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 2.4]})
    palette = plt.get_cmap("tab10")
    colors = {s: palette(i) for i, s in enumerate(CANONICAL_STAGES)}
    bottom = np.zeros(len(modes))
    for s in stages:
        means = np.array(
            [
                np.mean([b.stages[s].wall_ns / 1e6 if s in b.stages else 0.0 for b in batches if b.mode == m])
                for m in modes
            ]
        )
        left.bar(modes, means, bottom=bottom, label=s, color=colors[s])
        bottom += means
    left.set_ylabel("mean ms per batch")
    left.set_title("where a batch's time goes, by mode")
    left.legend(fontsize=8)
    if batches:
        t0 = batches[0].start_ns
        x = np.array([(b.start_ns - t0) / 1e9 for b in batches])
        base = np.zeros(len(batches))
        for s in stages:
            y = np.array([b.stages[s].wall_ns / 1e6 if s in b.stages else 0.0 for b in batches])
            right.fill_between(x, base, base + y, step="post", color=colors[s], label=s, linewidth=0)
            base += y
    right.set_xlabel("seconds since start")
    right.set_ylabel("batch ms (stacked by stage)")
    right.set_title(f"{len(batches)} batches")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    folder: Path, batches: list[BatchRecord], requests: list[RequestRecord], facts: dict[str, Any]
) -> dict[str, Any]:
    data = {**facts, **summary(batches, requests)}
    (folder / "summary.json").write_text(json.dumps(data, indent=2) + "\n")
    plot(batches, folder / "stages.png")
    return data
