"""Baseline detectors for `prism detect eval`, each streamed over the rows in file order.

- fixed threshold on the model's relative error (LatencyPrism's Fixed strategy, 15%), same chart otherwise;
- 3-sigma on raw latency: running mean and deviation of everything seen so far (no workload model);
- EWMA on raw latency: the classic EWMA chart (lambda 0.2, L 3) over running estimates.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from prism_core.detect.chart import ChartConfig, ControlChart, Recentre, judge

Floats = npt.NDArray[np.float64]
Alarms = npt.NDArray[np.bool_]

FIXED_THRESHOLD = 0.15
SIGMA_K = 3.0
EWMA_LAMBDA = 0.2
EWMA_L = 3.0
RAW_WARMUP = 30  # rows before the raw-latency charts may alarm: their mean and deviation need a few points


def chart_alarms(y: Floats, y_hat: Floats, config: ChartConfig, threshold: float) -> Alarms:
    """Stream latencies and their predictions through the control chart `config` describes, at `threshold`;
    True where it alarms."""
    chart = ControlChart(config.w, threshold, config.run, config.lone_ratio)
    scale = Recentre(config.recentre)
    out = np.zeros(len(y), dtype=bool)
    for i, (yi, pi) in enumerate(zip(y.tolist(), y_hat.tolist(), strict=True)):
        out[i] = judge(chart, scale, yi, pi)[3]
    return out


def sigma_alarms(y: Floats, k: float = SIGMA_K) -> Alarms:
    """Alarm when y > running mean + k running sd of every earlier row (Welford's update)."""
    out = np.zeros(len(y), dtype=bool)
    mean, m2 = 0.0, 0.0
    for n, v in enumerate(y.tolist(), 1):
        if n > RAW_WARMUP:
            out[n - 1] = v > mean + k * math.sqrt(m2 / (n - 2))
        d = v - mean
        mean += d / n
        m2 += d * (v - mean)
    return out


def ewma_alarms(y: Floats, lam: float = EWMA_LAMBDA, l_width: float = EWMA_L) -> Alarms:
    """EWMA statistic z = lam*y + (1-lam)*z against mean + L sd sqrt(lam/(2-lam)), running estimates."""
    out = np.zeros(len(y), dtype=bool)
    mean, m2 = 0.0, 0.0
    z = float(y[0]) if len(y) else 0.0
    width = l_width * math.sqrt(lam / (2 - lam))
    for n, v in enumerate(y.tolist(), 1):
        z = lam * v + (1 - lam) * z
        if n > RAW_WARMUP:
            out[n - 1] = z > mean + width * math.sqrt(m2 / (n - 2))
        d = v - mean
        mean += d / n
        m2 += d * (v - mean)
    return out
