"""The control chart over positive relative errors: point or rolling-window mode, learnt or fixed threshold."""

from __future__ import annotations

import statistics
from collections import deque
from typing import Literal

from pydantic import Field

from prism_core.errors import UsageError
from prism_core.models import Frozen

ChartMode = Literal["point", "window"]


class ChartConfig(Frozen):
    """LatencyPrism's defaults: window mode, W=10, k=3, theta_max=0.5 (its Dynamic-Window strategy)."""

    mode: ChartMode = "window"
    window: int = Field(10, ge=1, le=100)
    k: float = Field(3.0, gt=0)
    theta_max: float = Field(0.5, gt=0)
    # A floor under the learnt threshold: a warm-up on a quiet stretch learns a tiny sigma, and then the ordinary
    # swings of a shared CPU host (other tenants, frequency) alarm all the time. 0.15 is LatencyPrism's own fixed
    # threshold; with it, `prism run --detect` on the tiny engine alerted on the fault instead of on noise.
    theta_min: float = Field(0.15, ge=0)
    fixed_threshold: float | None = Field(None, gt=0, description="a set threshold instead of the learnt one")
    # A run rule: alarm only once the statistic has been over the threshold for `run` batches in a row. On a shared
    # 2-core VM 1.5-3.7% of normal batches ran over 1.5x their prediction, mostly alone (docs/detect.md); such lone
    # spikes pass, a fault that slows every batch alarms one batch later.
    run: int = Field(1, ge=1, le=100)
    # ...but a batch this many times its prediction alarms alone (with run > 1): the rule is for spikes of 1.5-4x,
    # and a GC storm's stall is often one batch of 100-2000x, which two-in-a-row never sees. 0: off.
    lone_ratio: float = Field(10.0, ge=0)
    # Re-centring: scale the model's prediction by the median latency / prediction of the last `recentre` batches
    # that kept the chart under its threshold (0: off). A shared host's speed moves: 20-25% between two runs two
    # hours apart here, and 15% within one (BENCHMARKS.md), more than the learnt thresholds.
    recentre: int = Field(0, ge=0, le=100_000)

    @property
    def w(self) -> int:
        return 1 if self.mode == "point" else self.window

    def threshold(self, mu: float, sigma: float) -> float:
        """`min(max(mu + k * sigma, theta_min), theta_max)`, or the fixed threshold when one is set."""
        if self.fixed_threshold is not None:
            return self.fixed_threshold
        return min(max(mu + self.k * sigma, self.theta_min), self.theta_max)


def chart_config(
    mode: str,
    window: int,
    k: float,
    theta_max: float,
    fixed: float | None = None,
    theta_min: float = 0.15,
    run: int = 1,
    recentre: int = 0,
    lone_ratio: float = 10.0,
) -> ChartConfig:
    """Build from CLI values, turning a bad value into a one-line UsageError."""
    if mode not in ("point", "window"):
        raise UsageError(f"chart mode must be point or window, got {mode!r}")
    if not 1 <= window <= 100:
        raise UsageError(f"--window must be in 1..100, got {window}")
    if k <= 0 or theta_max <= 0 or (fixed is not None and fixed <= 0):
        raise UsageError("--k, --theta-max and a fixed threshold must be positive")
    if not 0 <= theta_min <= theta_max:
        raise UsageError(f"--theta-min must be in [0, --theta-max], got {theta_min}")
    if not 1 <= run <= 100:
        raise UsageError(f"--run must be in 1..100, got {run}")
    if not 0 <= recentre <= 100_000:
        raise UsageError(f"--recentre must be in 0..100000 batches (0: off), got {recentre}")
    if lone_ratio != 0 and lone_ratio <= 1:
        raise UsageError(f"--lone-ratio must be over 1 (or 0: off), got {lone_ratio}")
    return ChartConfig(
        mode=mode,
        window=window,
        k=k,
        theta_max=theta_max,
        theta_min=theta_min,
        fixed_threshold=fixed,
        run=run,
        recentre=recentre,
        lone_ratio=lone_ratio,
    )


class ControlChart:
    """Keeps the last W errors; `update` returns the statistic (their mean) and whether it has been over the
    threshold for the last `run` updates (or, with a run rule, this batch alone was `lone_ratio` times slow)."""

    __slots__ = ("_errors", "_n", "_streak", "_sum", "lone_error", "run", "threshold", "w")

    RESUM_EVERY = 10_000  # recompute the running sum now and then so float drift cannot build up

    def __init__(self, w: int, threshold: float, run: int = 1, lone_ratio: float = 0.0) -> None:
        self.w = w
        self.threshold = threshold
        self.run = run
        # The error of a batch lone_ratio times its prediction; over 1 (never) when off or without a run rule.
        self.lone_error = 1.0 - 1.0 / lone_ratio if lone_ratio > 1 and run > 1 else 2.0
        self._streak = 0
        self._errors: deque[float] = deque(maxlen=w)
        self._sum = 0.0
        self._n = 0

    def update(self, error: float) -> tuple[float, bool]:
        errors = self._errors
        if len(errors) == self.w:
            self._sum -= errors[0]
        errors.append(error)
        self._sum += error
        self._n += 1
        if self._n % self.RESUM_EVERY == 0:
            self._sum = sum(errors)
        stat = self._sum / len(errors)
        self._streak = self._streak + 1 if stat > self.threshold else 0
        return stat, self._streak >= self.run or error >= self.lone_error

    def reset(self) -> None:
        self._errors.clear()
        self._sum = 0.0
        self._streak = 0


class Recentre:
    """The workload model's scale on this host now: the median of latency / prediction over the last `n` batches
    whose chart statistic stayed under the threshold (`n` = 0: the scale stays 1).

    The first `n` batches count whatever the chart says: a model carried to a host 20% slower would otherwise
    alarm on every batch and never learn the new scale (the warm-up's assumption: a run starts normal). A fault
    that raises the chart does not move the scale; one too weak to raise it may, by at most its own size."""

    __slots__ = ("_accepted", "_ratios", "n", "scale")

    # Batches between recomputing the median: a 200-value median takes ~4 us here, a fifth of a whole update.
    EVERY = 20

    def __init__(self, n: int) -> None:
        self.n = n
        self.scale = 1.0
        self._ratios: deque[float] = deque(maxlen=n)
        self._accepted = 0

    def error(self, y: float, y_hat: float) -> float:
        """LatencyPrism's positive relative error against the re-centred prediction."""
        return max(0.0, 1.0 - self.scale * y_hat / y) if y > 0 else 0.0

    def observe(self, y: float, y_hat: float, over: bool) -> None:
        if not self.n or (over and self._accepted >= self.n) or y <= 0 or y_hat <= 0:
            return
        self._ratios.append(y / y_hat)
        self._accepted += 1
        if self._accepted % self.EVERY == 0:
            self.scale = statistics.median(self._ratios)


def judge(chart: ControlChart, scale: Recentre, y: float, y_hat: float) -> tuple[float, float, float, bool]:
    """One batch through the (re-centred) chart, online and offline alike: (the prediction it was judged against,
    its error, the chart statistic, alarm)."""
    judged, error = y_hat * scale.scale, scale.error(y, y_hat)
    stat, alarm = chart.update(error)
    scale.observe(y, y_hat, stat > chart.threshold)
    return judged, error, stat, alarm
