"""What a simulation reports: SLO attainment, latency tails, throughput, utilisation, memory over time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pydantic import Field

from prism_core.models import Frozen
from prism_core.schedule.catalogue import GiB, ttft_slo_factor
from prism_core.schedule.simstate import Recorder

if TYPE_CHECKING:
    from prism_core.schedule.executor import Executor
    from prism_core.schedule.simulator import Setup


class ModelResult(Frozen):
    name: str
    requests: int
    slo_attainment: float
    p99_ttft_s: float | None
    p99_tpot_s: float | None
    slo_ttft_s: float
    slo_tpot_s: float


class MemoryTimeline(Frozen):
    """Per device, at evenly spaced times: bytes of resident weights and of KV pages, in GiB."""

    t_s: list[float]
    weights_gib: list[list[float]] = Field(description="[device][sample]")
    kv_gib: list[list[float]] = Field(description="[device][sample]")


class PolicyResult(Frozen):
    """One policy's run. Latencies are None where more than 1% of requests never got there (unfinished)."""

    schema_version: int = 1
    policy: str
    admission: str
    models: int
    devices: int
    trace: str
    rate_scale: float
    seed: int
    duration_s: float
    requests: int
    finished: int
    dropped: int = Field(description="requests that could never fit their model's KV budget")
    rejected: int = Field(0, description="arrivals turned away because their model's queue was at its cap")
    unplaced_models: list[str]
    slo_attainment: float = Field(description="fraction of requests meeting both their TTFT and TPOT SLO")
    ttft_attainment: float
    tpot_attainment: float
    p99_ttft_s: float | None
    p99_tpot_s: float | None
    devices_needed_for_99: int | None = Field(
        None, description="smallest device count with attainment >= 99% (--cost-search), None if not searched/found"
    )
    cost_target: float = Field(0.99, description="the attainment the cost search looked for (--cost-target)")
    cost_search: dict[int, float] | None = Field(None, description="attainment at every device count tried")
    throughput_rps: float
    output_tokens_per_s: float
    device_utilisation: list[float]
    activations: int
    migrations: int
    preemptions: int
    memory: MemoryTimeline
    per_model: list[ModelResult]
    wall_s: float = Field(description="seconds the simulation itself took")


def _p99(values: npt.NDArray[np.float64]) -> float | None:
    if not len(values):
        return None
    v = float(np.quantile(values, 0.99, method="higher"))
    return v if math.isfinite(v) else None


def summarise(
    *,
    setup: Setup,
    policy: str,
    admission: str,
    rec: Recorder,
    executors: Sequence[Executor],
    migrations: int,
    unplaced: list[str],
    wall_s: float,
) -> PolicyResult:
    w = setup.workload
    slo_ttft = np.array([m.slo_ttft_s or math.inf for m in setup.models])[w.model] * ttft_slo_factor(w.prompt)
    slo_tpot = np.array([m.slo_tpot_s or math.inf for m in setup.models])[w.model]
    done = rec.finish_s >= 0
    ttft = np.where(done, rec.first_token_s - w.arrival_s, np.inf)
    steps = np.maximum(w.output - 1, 1)
    tpot = np.where(done, np.where(w.output > 1, (rec.finish_s - rec.first_token_s) / steps, 0.0), np.inf)
    ttft_ok = ttft <= slo_ttft
    tpot_ok = tpot <= slo_tpot
    ok = ttft_ok & tpot_ok
    n = max(len(w), 1)

    per_model = []
    for j, m in enumerate(setup.models):
        mine = w.model == j
        per_model.append(
            ModelResult(
                name=m.name,
                requests=int(mine.sum()),
                slo_attainment=float(ok[mine].mean()) if mine.any() else 1.0,
                p99_ttft_s=_p99(ttft[mine]),
                p99_tpot_s=_p99(tpot[mine]),
                slo_ttft_s=m.slo_ttft_s or math.inf,
                slo_tpot_s=m.slo_tpot_s or math.inf,
            )
        )

    horizon = max(w.duration_s, float(rec.finish_s.max(initial=0.0)))
    n_dev = len(setup.devices)
    busy = np.zeros(n_dev)
    weights = np.zeros((n_dev, len(rec.sample_times)))
    kv = np.zeros((n_dev, len(rec.sample_times)))
    for ex in executors:
        rec.sample(ex)
        samples = np.array(rec.samples.get(ex.index, []), dtype=np.float64).reshape(-1, 2)
        for d, share in ex.shares.items():
            busy[d] += ex.busy_s * share
            weights[d, : len(samples)] += samples[:, 0] / len(ex.shares)
            kv[d, : len(samples)] += samples[:, 1] / len(ex.shares)
    return PolicyResult(
        policy=policy,
        admission=admission,
        models=len(setup.models),
        devices=n_dev,
        trace=setup.trace,
        rate_scale=setup.rate_scale,
        seed=setup.seed,
        duration_s=w.duration_s,
        requests=len(w),
        finished=int(done.sum()),
        dropped=rec.dropped,
        rejected=rec.rejected,
        unplaced_models=unplaced,
        slo_attainment=float(ok.sum() / n),
        ttft_attainment=float(ttft_ok.sum() / n),
        tpot_attainment=float(tpot_ok.sum() / n),
        p99_ttft_s=_p99(ttft),
        p99_tpot_s=_p99(tpot),
        throughput_rps=float(done.sum() / w.duration_s),
        output_tokens_per_s=float(w.output[done].sum() / w.duration_s),
        device_utilisation=[round(float(b / horizon), 4) for b in busy],
        activations=rec.activations,
        migrations=migrations,
        preemptions=rec.preemptions,
        memory=MemoryTimeline(
            t_s=[round(float(t), 3) for t in rec.sample_times],
            weights_gib=np.round(weights / GiB, 3).tolist(),
            kv_gib=np.round(kv / GiB, 3).tolist(),
        ),
        per_model=per_model,
        wall_s=round(wall_s, 3),
    )
