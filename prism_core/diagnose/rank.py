"""Rank (stage, resource) suspects between a normal and an abnormal window (after LatencyPrism's RCA score).

For every batch: each stage's share of the cycle (beta = stage wall time / batch duration) and each telemetry
resource at the batch's midpoint (mu, linear interpolation between samples). Then, per pair:

    score = gain x (|z beta| + z_pressure),  z = (mean_abnormal - mean_normal) / sd_normal

where gain is delta beta if the share grew by at least SHARE_SD_FLOOR (2 points of the cycle), else 0, and
z_pressure is z of log1p(mu) where mu moved towards pressure (see LOWER_IS_PRESSURE) by at least
RESOURCE_Z_MIN, else 0. LatencyPrism scores |delta beta| x (|z beta| + |z log1p(mu)|); Prism scores only a share
that grew by a visible amount and a resource that moved towards pressure, and names "(no resource moved)" when
none did.

Only stages whose mean time grew are suspects: when one stage slows, the others' shares fall by the same total,
and a shrinking share is a consequence, not a cause. A stage whose time grew while its share fell slowed less
than the rest of the cycle: it stays a suspect, ranked after those that took more of the cycle, by how many ms it
grew. A pair is significant when Welch's t-test on the stage's log times says it got slower (p < ALPHA): a
dominant stage that doubles moves its share only a little, so a test on shares alone misses the clearest case.
The share test's p-value and the resource's own Mann-Whitney p-value are reported as evidence.

On a CPU device a stage is split in two parts, as LatencyPrism splits `oncpu` from `runq`: its time on the CPU
(the engine thread's CPU time, which the cpu timing backend records as the stage's device time) and its time off
it (wall minus that: preempted, waiting, sleeping). A neighbour taking the cores grows the off-CPU part; slower
execution of the same work (a lower clock, a contended cache) grows the on-CPU part. On an accelerator the device
time is asynchronous to the host's wall time, so wall minus device is no part of the cycle and stages stay whole.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from prism_core.diagnose.evidence import Evidence
from prism_core.errors import UsageError
from prism_core.export import names
from prism_core.models import BatchRecord

Floats = npt.NDArray[np.float64]
ALPHA = 0.05
TOP = 3
MIN_BATCHES = 5
NO_TELEMETRY = "(no telemetry)"
NO_RESOURCE_MOVED = "(no resource moved)"
# A resource explains a slowdown only by moving towards pressure: up for utilisation, run queue, load, memory,
# temperature, traffic; down for these clocks. One that moved the other way explains nothing: LatencyPrism's
# |z log mu| named the 1-minute load average, still falling after an earlier fault, for a stage delay.
RESOURCE_Z_MIN = 1.0  # one normal standard deviation
LOWER_IS_PRESSURE = frozenset({names.SYSTEM_CPU_FREQUENCY, names.PRISM_GPU_CLOCK_SM, names.PRISM_GPU_CLOCK_MEMORY})
ON_CPU, OFF_CPU = "on-cpu", "off-cpu"
# The least spread a share's z is measured against: 2 points of the cycle. A part that is near zero in every
# normal batch (a sample stage's off-CPU time, say) would otherwise turn a 2-point move into a z of hundreds
# and outrank the stage that took 40 points of the cycle. 1 point still let that happen in 2 of 20 faults
# (docs/detect.md, "Diagnosis by fault"). A share that grew by less scores nothing: when one part holds 97% of the
# cycle and slows with it, every share stays put, and a 1 ms stage that gained 0.1 point outranked the 1,100 ms
# forward pass that grew 600 ms (prism demo on a busy host); with no share moving, the ms grown decide.
SHARE_SD_FLOOR = 0.02


@dataclass(frozen=True, slots=True)
class Suspect:
    stage: str
    part: str | None  # ON_CPU or OFF_CPU where the stage was split, else None (its wall time)
    resource: str
    score: float
    significant: bool
    share_normal: float
    share_abnormal: float
    z_share: float
    p_share: float
    stage_ms_normal: float  # mean ms of the stage, or of its part where it was split
    stage_ms_abnormal: float
    p_stage_time: float
    resource_normal: float | None
    resource_abnormal: float | None
    z_log_resource: float
    p_resource: float | None

    @property
    def where(self) -> str:
        return self.stage if self.part is None else f"{self.stage} ({self.part})"

    def summary(self) -> str:
        s = (
            f"{self.where}: share {self.share_normal:.1%} -> {self.share_abnormal:.1%} (z {self.z_share:+.1f}, "
            f"p {self.p_share:.2g}), {self.stage_ms_normal:.2f} -> {self.stage_ms_abnormal:.2f} ms "
            f"(p {self.p_stage_time:.2g})"
        )
        if self.resource_normal is not None and self.resource_abnormal is not None:
            s += (
                f"; {self.resource} {self.resource_normal:.4g} -> {self.resource_abnormal:.4g} "
                f"(z log {self.z_log_resource:+.1f}, p {self.p_resource:.2g})"
            )
        return s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "where": self.where}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    suspects: list[Suspect]
    batches_normal: int
    batches_abnormal: int
    mean_ms_normal: float
    mean_ms_abnormal: float
    resources: list[str]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["suspects"] = [s.to_dict() for s in self.suspects]
        return d


Part = tuple[str, str | None]  # (stage, ON_CPU | OFF_CPU | None)


def _parts(sides: tuple[Evidence, ...]) -> list[Part]:
    """Every stage, split into its on- and off-CPU parts where each batch that ran it was on a CPU device and
    recorded its device time."""
    batches = [b for ev in sides for b in ev.batches]
    parts: list[Part] = []
    for stage in sorted({s for b in batches for s in b.stages}):
        split = all(
            b.device.startswith("cpu:") and b.stages[stage].device_ns is not None for b in batches if stage in b.stages
        )
        parts += [(stage, ON_CPU), (stage, OFF_CPU)] if split else [(stage, None)]
    return parts


def _part_ns(b: BatchRecord, stage: str, part: str | None) -> int:
    t = b.stages.get(stage)
    if t is None:
        return 0
    if part is None or t.device_ns is None:
        return t.wall_ns
    on = min(t.device_ns, t.wall_ns)  # two clocks read a few ns apart: CPU time can exceed wall time by that much
    return on if part == ON_CPU else t.wall_ns - on


def _shares(ev: Evidence, parts: list[Part]) -> tuple[Floats, Floats]:
    """(shares, ms) per batch x part."""
    ns = np.array([[_part_ns(b, s, p) for s, p in parts] for b in ev.batches], dtype=float)
    dur = np.array([max(b.duration_ns, 1) for b in ev.batches], dtype=float)
    return ns / dur[:, None], ns / 1e6


def _resources(ev: Evidence, names: list[str]) -> Floats:
    """Each resource at each batch's midpoint, interpolated between samples (NaN where it was never read)."""
    mid = np.array([b.start_ns + b.duration_ns / 2 for b in ev.batches], dtype=float)
    out = np.full((len(mid), len(names)), np.nan)
    for j, name in enumerate(names):
        pts = [(s.ts_ns, s.values[name]) for s in ev.telemetry if name in s.values]
        if pts:
            ts, v = np.array(pts, dtype=float).T
            out[:, j] = np.interp(mid, ts, v)
    return out


def _z(normal: Floats, abnormal: Floats, floor: float = 0.0) -> float:
    sd = float(np.std(normal, ddof=1)) if len(normal) > 1 else 0.0
    floor = max(floor, 1e-9, 0.01 * abs(float(np.mean(normal))))  # a constant normal side must not give z = inf
    return (float(np.mean(abnormal)) - float(np.mean(normal))) / max(sd, floor)


def _towards(resource: str, z: float) -> float:
    """How far a resource moved towards pressure, in z of log1p; 0 if it moved away or by less than RESOURCE_Z_MIN
    (a stage delay's sleep moved memory use by 0.1%, z 0.01: with thousands of samples even that is
    "significant", so significance alone would still name it)."""
    towards = -z if resource in LOWER_IS_PRESSURE else z
    return towards if towards >= RESOURCE_Z_MIN else 0.0


def diagnose(normal: Evidence, abnormal: Evidence, top: int = TOP) -> Diagnosis:
    """The top `top` (stage, resource) suspects, one per stage (or stage part), significant ones first, with their
    evidence."""
    try:
        from scipy import stats  # type: ignore[import-untyped]
    except ImportError as exc:
        raise UsageError(f"diagnosis needs SciPy: pip install 'prism-xpu[detect]' ({exc})") from None
    for side, ev in (("normal", normal), ("abnormal", abnormal)):
        if len(ev.batches) < MIN_BATCHES:
            raise UsageError(f"the {side} side has {len(ev.batches)} batches; diagnosis needs at least {MIN_BATCHES}")
    parts = _parts((normal, abnormal))
    resources = sorted(
        {k for ev in (normal, abnormal) for t in ev.telemetry for k in t.values}
        & {k for t in normal.telemetry for k in t.values}
        & {k for t in abnormal.telemetry for k in t.values}
    )
    beta_n, ms_n = _shares(normal, parts)
    beta_a, ms_a = _shares(abnormal, parts)
    mu_n, mu_a = _resources(normal, resources), _resources(abnormal, resources)
    # (name, z of log1p, z towards pressure, mean normal, mean abnormal, p); the first wins ties: when no resource
    # moved towards pressure, the suspect names none.
    res_terms: list[tuple[str, float, float, float | None, float | None, float | None]] = [
        (NO_RESOURCE_MOVED if resources else NO_TELEMETRY, 0.0, 0.0, None, None, None)
    ]
    for j, name in enumerate(resources):
        a, b = mu_n[:, j], mu_a[:, j]
        la, lb = np.log1p(np.maximum(a, 0)), np.log1p(np.maximum(b, 0))
        p = float(stats.mannwhitneyu(a, b).pvalue) if np.ptp(np.r_[a, b]) > 0 else 1.0
        z = _z(la, lb)
        res_terms.append((name, z, _towards(name, z), float(a.mean()), float(b.mean()), p))
    suspects = []
    for i, (stage, part) in enumerate(parts):
        if ms_a[:, i].mean() <= ms_n[:, i].mean():
            continue
        d_beta = float(beta_a[:, i].mean() - beta_n[:, i].mean())
        z_beta = _z(beta_n[:, i], beta_a[:, i], SHARE_SD_FLOOR)
        p_beta = float(stats.ttest_ind(beta_n[:, i], beta_a[:, i], equal_var=False).pvalue)
        p_beta = 1.0 if math.isnan(p_beta) else p_beta
        log_n, log_a = np.log1p(ms_n[:, i]), np.log1p(ms_a[:, i])
        p_time = float(stats.ttest_ind(log_n, log_a, equal_var=False).pvalue)
        p_time = 1.0 if math.isnan(p_time) else p_time
        for name, z_mu, towards, rn, ra, p_mu in res_terms:
            suspects.append(
                Suspect(
                    stage=stage,
                    part=part,
                    resource=name,
                    score=(d_beta if d_beta >= SHARE_SD_FLOOR else 0.0) * (abs(z_beta) + towards),
                    significant=p_time < ALPHA,
                    share_normal=float(beta_n[:, i].mean()),
                    share_abnormal=float(beta_a[:, i].mean()),
                    z_share=z_beta,
                    p_share=p_beta,
                    stage_ms_normal=float(ms_n[:, i].mean()),
                    stage_ms_abnormal=float(ms_a[:, i].mean()),
                    p_stage_time=p_time,
                    resource_normal=rn,
                    resource_abnormal=ra,
                    z_log_resource=z_mu,
                    p_resource=p_mu,
                )
            )
    # Ties (a share that fell scores 0 with every resource): the stage that grew most, then the resource that moved
    # most towards pressure. The sort is stable: where none did, res_terms' first entry (no resource) stays first.
    suspects.sort(
        key=lambda s: (
            not s.significant,
            -s.score,
            s.stage_ms_normal - s.stage_ms_abnormal,
            -_towards(s.resource, s.z_log_resource),
        )
    )
    # One pair per stage part (its best-explaining resource), as LatencyPrism reports unique functions: three
    # resources of the same stage would crowd out a second slowed stage.
    best: dict[Part, Suspect] = {}
    for s in suspects:
        best.setdefault((s.stage, s.part), s)
    suspects = list(best.values())
    return Diagnosis(
        suspects=suspects[:top],
        batches_normal=len(normal.batches),
        batches_abnormal=len(abnormal.batches),
        mean_ms_normal=float(np.mean([b.duration_ns for b in normal.batches]) / 1e6),
        mean_ms_abnormal=float(np.mean([b.duration_ns for b in abnormal.batches]) / 1e6),
        resources=resources,
    )
