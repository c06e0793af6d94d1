"""Scores: regression accuracy of the latency model, and detection quality against 0/1 labels."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def regression_metrics(y: Floats, y_hat: Floats) -> dict[str, float]:
    """r2, mape, median_ape, within_10pct, within_25pct (fractions: 0.071 means 7.1%), and rows."""
    ape = np.abs(y_hat - y) / y
    ss_res = float(((y - y_hat) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "within_10pct": float((ape <= 0.10).mean()),
        "within_25pct": float((ape <= 0.25).mean()),
        "rows": len(y),
    }


def segments(label: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """[start, end) of each run of 1s."""
    padded = np.r_[0, label.astype(np.int8), 0]
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def detection_metrics(label: npt.NDArray[np.int64], alarm: npt.NDArray[np.bool_]) -> dict[str, float | int | None]:
    """Per-batch precision, recall, f1, fpr; lag = mean batches from each abnormal segment's onset to its first
    alarm inside the segment (segments never alarmed are `missed_segments`, not in the mean)."""
    lab = label.astype(bool)
    tp = int((alarm & lab).sum())
    fp = int((alarm & ~lab).sum())
    fn = int((~alarm & lab).sum())
    tn = int((~alarm & ~lab).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    lags = []
    segs = segments(label)
    for a, b in segs:
        hits = np.flatnonzero(alarm[a:b])
        if len(hits):
            lags.append(int(hits[0]))
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fpr": fp / (fp + tn) if fp + tn else 0.0,
        "lag": float(np.mean(lags)) if lags else None,
        "segments": len(segs),
        "missed_segments": len(segs) - len(lags),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }
