"""The demo's report: per-stage breakdown plot and control chart (PNGs), summary JSON; the JSONL and Chrome trace
come from export."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prism_core.capture.stages import CANONICAL_STAGES
from prism_core.models import Alert, BatchRecord, RequestRecord

if TYPE_CHECKING:
    from prism_core.detect.detector import Observation


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


def plot_control_chart(
    history: Sequence[Observation],
    path: Path,
    *,
    fault: tuple[int, int] | None = None,
    alerts: Sequence[Alert] = (),
    title: str = "",
) -> None:
    """Top: each monitored batch's latency and the workload's prediction. Bottom: the chart statistic against
    its threshold, alerts marked. The fault's window (onset, end in wall-clock ns) is shaded on both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    t0 = history[0].batch_start_ns if history else 0

    def sec(ns: int) -> float:
        return (ns - t0) / 1e9

    x = np.array([sec(o.batch_start_ns) for o in history])
    top.plot(x, [o.duration_us / 1e3 for o in history], ".", ms=3, color="tab:blue", label="batch latency")
    top.plot(x, [o.predicted_us / 1e3 for o in history], "-", lw=1, color="tab:orange", label="workload prediction")
    top.set_yscale("log")
    top.set_ylabel("decode batch ms")
    bottom.plot(x, [o.stat for o in history], "-", lw=1, color="tab:purple", label="chart statistic")
    bottom.plot(x, [o.threshold for o in history], "--", lw=1, color="tab:red", label="threshold")
    for a in alerts:
        bottom.axvline(sec(a.batch_start_ns), color="tab:red", lw=0.8, alpha=0.6)
    if fault is not None:
        for ax in (top, bottom):
            ax.axvspan(sec(fault[0]), sec(fault[1]), color="tab:gray", alpha=0.2, label="fault on")
    bottom.set_ylabel("mean positive relative error")
    bottom.set_xlabel("seconds since the detector started scoring")
    top.set_title(title or f"{len(history)} decode batches scored, {len(alerts)} alert(s)")
    top.legend(fontsize=8, loc="upper left")
    bottom.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
