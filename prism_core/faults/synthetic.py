"""Labelled evaluation sets made from real normal batch records by injecting documented latency faults.

This is not a fault run on an engine: the workload and the normal latencies are real (e.g. LatencyPrism's vLLM
sweep), and the abnormal latencies are those rows transformed by a known rule, so the ground truth is exact.
Whole jobs are held out for evaluation, so the model never saw the workloads it is tested on.

Fault shapes (the intensity is the extra latency as a fraction of the job's median before onset):
- `slowdown`: every batch takes (1 + i) times as long (a resource squeezed: LatencyPrism's CPU squeeze
  doubled iteration times);
- `stage_delay`: a constant i x median is added to every batch (a sleep in one stage);
- `ramp`: the extra time grows linearly from 0 to i x median over the segment (thermal or memory creep).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from prism_core.detect.model import write_atomic
from prism_core.detect.table import VLLM_COLUMNS, WorkloadTable
from prism_core.errors import UsageError

SHAPES: dict[str, tuple[float, float]] = {"slowdown": (0.2, 1.0), "stage_delay": (0.15, 0.5), "ramp": (0.3, 1.0)}
HOLDOUT_FRACTION = 0.2
MIN_JOB_ROWS = 60
ONSET_RANGE = (0.3, 0.6)  # onset somewhere in this fraction of the job, so normal rows come first
SEGMENT_FRACTION = 0.2
MIN_SEGMENT = 10


@dataclass(frozen=True, slots=True)
class InjectedFault:
    """Ground truth for one segment: rows [onset_row, end_row) of the eval file (0-based, data rows)."""

    job: str
    shape: str
    intensity: float
    onset_row: int
    end_row: int
    onset_us: float
    end_us: float


def make_labelled(t: WorkloadTable, *, seed: int = 0) -> tuple[WorkloadTable, WorkloadTable, list[InjectedFault]]:
    """(train rows, labelled eval rows with faults injected, ground truth). Eval jobs keep their time order."""
    rng = np.random.default_rng(seed)
    groups = np.unique(t.group)
    if len(groups) < 5:
        raise UsageError(f"{t.source}: {len(groups)} job(s); a labelled set needs at least 5 to hold some out")
    held = set(rng.choice(groups, max(1, round(HOLDOUT_FRACTION * len(groups))), replace=False).tolist())
    test = np.isin(t.group, list(held))
    variants = [(s, i) for s, levels in SHAPES.items() for i in levels]
    y = t.duration_us.copy()
    label = np.zeros(len(t), dtype=np.int64)
    order: list[npt.NDArray[np.int64]] = []
    faults: list[InjectedFault] = []
    n_out = 0
    for k, job in enumerate(sorted(held)):
        idx = np.flatnonzero(t.group == job)
        idx = idx[np.argsort(t.start_us[idx], kind="stable")]
        order.append(idx)
        if len(idx) >= MIN_JOB_ROWS:
            shape, intensity = variants[k % len(variants)]
            n = len(idx)
            seg = max(MIN_SEGMENT, round(SEGMENT_FRACTION * n))
            onset = int(rng.integers(round(ONSET_RANGE[0] * n), round(ONSET_RANGE[1] * n)))
            end = min(n, onset + seg)
            rows = idx[onset:end]
            base = float(np.median(t.duration_us[idx[:onset]]))
            if shape == "slowdown":
                y[rows] *= 1 + intensity
            elif shape == "stage_delay":
                y[rows] += intensity * base
            else:
                y[rows] += intensity * base * np.linspace(0, 1, len(rows) + 1)[1:]
            label[rows] = 1
            faults.append(
                InjectedFault(
                    job,
                    shape,
                    intensity,
                    n_out + onset,
                    n_out + end,
                    float(t.start_us[rows[0]]),
                    float(t.start_us[rows[-1]]),
                )
            )
        n_out += len(idx)
    eval_idx = np.concatenate(order)
    train = t.take(~test)
    labelled = t.take(eval_idx)
    labelled = WorkloadTable(
        y[eval_idx], labelled.mode, labelled.batch_size, labelled.avg_input, labelled.max_input,
        labelled.avg_output, labelled.max_output, labelled.prefill_tokens, labelled.start_us, labelled.group,
        label[eval_idx], t.source, dict(t.meta),
    )  # fmt: skip
    return train, labelled, faults


def latencyprism_csv(t: WorkloadTable) -> str:
    """The table in LatencyPrism's vLLM layout (decode rows), plus `label` when the table has labels."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*VLLM_COLUMNS, *(("label",) if t.label is not None else ())])
    for i in range(len(t)):
        row: list[Any] = [
            t.group[i],
            f"{t.start_us[i]:.2f}",
            f"{t.duration_us[i]:.2f}",
            int(t.batch_size[i]),
            f"{t.avg_input[i]:.2f}",
            int(t.max_input[i]),
            f"{t.avg_output[i]:.2f}",
            int(t.max_output[i]),
        ]
        if t.label is not None:
            row.append(int(t.label[i]))
        w.writerow(row)
    return buf.getvalue()


def write_labelled(t: WorkloadTable, out: Path, *, seed: int = 0) -> dict[str, Any]:
    """Write train.csv, eval.csv (with `label`) and faults.json under `out`; each file whole or not at all."""
    if t.meta.get("layout") != "vllm":
        raise UsageError("labelled sets are made from LatencyPrism vLLM-layout records (decode rows with job_name)")
    if not out.is_dir():
        raise UsageError(f"output folder {out} does not exist")
    train, labelled, faults = make_labelled(t, seed=seed)
    summary = {
        "source": t.source,
        "seed": seed,
        "train_rows": len(train),
        "eval_rows": len(labelled),
        "abnormal_rows": int(labelled.label.sum()) if labelled.label is not None else 0,
        "faults": [asdict(f) for f in faults],
    }
    write_atomic(out / "train.csv", latencyprism_csv(train))
    write_atomic(out / "eval.csv", latencyprism_csv(labelled))
    write_atomic(out / "faults.json", json.dumps(summary, indent=2))
    return summary
