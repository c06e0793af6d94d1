"""Offline evaluation: model accuracy on hold-outs (`prism detect fit`) and detection quality (`prism detect eval`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from prism_core.detect import baselines
from prism_core.detect.chart import ChartConfig
from prism_core.detect.metrics import Floats, detection_metrics, regression_metrics
from prism_core.detect.model import LatencyModel, clean_mask
from prism_core.detect.table import MODE_CODES, WorkloadTable
from prism_core.errors import UsageError
from prism_core.faults.timeline import FaultEvent

HOLDOUT_FRACTION = 0.2


def _holdout(t: WorkloadTable, test: npt.NDArray[np.bool_], clean: npt.NDArray[np.bool_], seed: int) -> dict[str, Any]:
    """Fit on the rows outside `test`, score the test rows: outlier-filtered (headline) and unfiltered."""
    model = LatencyModel.fit(t.take(~test), seed=seed, calibrate=False)
    scored = t.take(test)
    y_hat = model.predict_us(scored)
    out: dict[str, Any] = regression_metrics(scored.duration_us[clean[test]], y_hat[clean[test]])
    out["unfiltered"] = regression_metrics(scored.duration_us, y_hat)
    out["train_rows"] = model.training.rows
    return out


def fit_report(t: WorkloadTable, *, seed: int = 0) -> dict[str, Any]:
    """Hold-out accuracy: a seeded 20% random-row hold-out, and (`by_job`) a 20% hold-out of whole groups.

    Headline figures are on the test rows that pass the training outlier filter (computed over the whole file,
    as LatencyPrism filtered before splitting); `unfiltered` scores every test row.
    """
    rng = np.random.default_rng(seed)
    clean = clean_mask(t)
    report: dict[str, Any] = _holdout(t, rng.random(len(t)) < HOLDOUT_FRACTION, clean, seed)
    groups = np.unique(t.group)
    if len(groups) >= 5:
        held = rng.choice(groups, max(1, round(HOLDOUT_FRACTION * len(groups))), replace=False)
        by_job = _holdout(t, np.isin(t.group, held), clean, seed)
        by_job["jobs_held_out"] = len(held)
        report["by_job"] = by_job
    else:
        report["by_job"] = None
        report["by_job_reason"] = f"{len(groups)} job(s) in the file; a whole-job hold-out needs at least 5"
    return report


def fit_with_report(t: WorkloadTable, *, seed: int = 0) -> tuple[LatencyModel, dict[str, Any]]:
    """`prism detect fit`: hold-out report, then the model fitted on every row (timed)."""
    report = fit_report(t, seed=seed)
    t0 = time.perf_counter()
    model = LatencyModel.fit(t, seed=seed)
    report["fit_seconds"] = time.perf_counter() - t0
    report["file_rows"] = len(t)
    report["rows_used"] = model.training.rows
    report["rows_dropped"] = model.training.dropped
    report["calibration"] = {
        "split": model.calibration.split,
        "point": model.calibration.point,
        "window_10": model.calibration.window["10"],
    }
    return model, report


def evaluate(
    model: LatencyModel,
    t: WorkloadTable,
    chart: ChartConfig,
    modes: frozenset[str],
    faults: Sequence[FaultEvent] = (),
) -> dict[str, Any]:
    """Stream the rows in file order through the detector's chart and through each baseline; score all.

    With the fault timeline the set was made with, `by_fault` says for each fault how much it slowed the monitored
    batches it overlapped (median measured / predicted latency) and how many of them the detector flagged: a fault
    that does not slow the engine is one no latency detector can see, and this is where that shows."""
    if t.label is None:
        raise UsageError(f"{t.source}: no 'label' column (0 = normal batch, 1 = abnormal)")
    monitored = np.isin(t.mode, [MODE_CODES[m] for m in modes])
    if not monitored.any():
        raise UsageError(f"{t.source}: no rows of the monitored mode(s) {', '.join(sorted(modes))}")
    y = t.duration_us[monitored]
    label = t.label[monitored]
    predicted = model.predict_us(t.take(monitored))
    mu, sigma = model.window_stats(chart.w)
    threshold = chart.threshold(mu, sigma)
    alarms = baselines.chart_alarms(y, predicted, chart, threshold)
    result: dict[str, Any] = detection_metrics(label, alarms)
    result.update(
        rows=len(t), rows_scored=int(monitored.sum()), threshold=threshold, chart=chart.model_dump(mode="json")
    )
    result["baselines"] = {
        f"fixed_{round(baselines.FIXED_THRESHOLD * 100)}pct": detection_metrics(
            label, baselines.chart_alarms(y, predicted, chart, baselines.FIXED_THRESHOLD)
        ),
        "sigma3_raw": detection_metrics(label, baselines.sigma_alarms(y)),
        "ewma_raw": detection_metrics(label, baselines.ewma_alarms(y)),
    }
    if faults:
        start_ns = t.start_us[monitored] * 1e3
        result["by_fault"] = [_fault_report(f, start_ns, start_ns + y * 1e3, predicted, y, alarms) for f in faults]
    return result


def _fault_report(
    f: FaultEvent, start_ns: Floats, end_ns: Floats, predicted_us: Floats, y: Floats, alarms: npt.NDArray[np.bool_]
) -> dict[str, Any]:
    """One fault: the monitored batches it overlapped, their median slow-down, the share flagged, the lag."""
    inside = (start_ns < f.end_ns) & (end_ns > f.onset_ns)
    rows = np.flatnonzero(inside)
    hits = np.flatnonzero(alarms[rows])
    return {
        "fault": f.name,
        "intensity": f.intensity,
        "batches": len(rows),
        "latency_ratio": round(float(np.median(y[rows] / predicted_us[rows])), 4) if len(rows) else None,
        "recall": round(len(hits) / len(rows), 4) if len(rows) else None,
        "lag": int(hits[0]) if len(hits) else None,
    }
