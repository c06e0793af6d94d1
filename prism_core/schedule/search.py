"""Questions asked of many simulations: how many devices a policy needs, at which load a policy breaks,
how attainment falls as load grows, and how long placement takes to decide."""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prism_core.errors import UsageError
from prism_core.schedule.catalogue import Catalogue
from prism_core.schedule.cost import CostModel
from prism_core.schedule.policies import AdmissionPolicy, DeviceSlot, ModelDemand, PlacementPolicy
from prism_core.schedule.results import PolicyResult
from prism_core.schedule.scenario import Scenario, make_setup, resolve_models
from prism_core.schedule.simulator import MIN_KV_TOKENS, simulate
from prism_core.schedule.workload import Workload, build_workload, trace


@dataclass(frozen=True, slots=True)
class Bench:
    """A scenario with its catalogue, cost model and data folder: everything `run` needs but the policies."""

    scenario: Scenario
    catalogue: Catalogue
    cost: CostModel
    data_folder: Path | None = None

    def workload(self, s: Scenario) -> Workload:
        return build_workload(trace(s.trace, self.data_folder), s.n_models, s.duration_s, s.rate_scale, s.seed)

    def run(
        self, policy: PlacementPolicy, admission: AdmissionPolicy, s: Scenario | None = None, w: Workload | None = None
    ) -> PolicyResult:
        sc = s or self.scenario
        setup = make_setup(sc, self.catalogue, self.cost, self.data_folder, w or self.workload(sc))
        return simulate(setup, policy, admission)


def devices_needed(
    bench: Bench,
    policy: PlacementPolicy,
    admission: AdmissionPolicy,
    target: float = 0.99,
    max_devices: int | None = None,
) -> tuple[int | None, dict[int, float]]:
    """Smallest device count whose attainment reaches `target` (doubling, then bisection; attainment is assumed
    to grow with devices). Returns it (None if `max_devices` is not enough) and every count tried."""
    s = bench.scenario
    w = bench.workload(s)
    smallest = max(m.tp for m in resolve_models(s, bench.catalogue, bench.cost))
    limit = max_devices or max(4 * s.n_models, len(s.device_types))
    tried: dict[int, float] = {}

    def ok(m: int) -> bool:
        if m not in tried:
            tried[m] = bench.run(policy, admission, s.with_devices(m), w).slo_attainment
        return tried[m] >= target

    lo, hi = smallest - 1, smallest  # invariant: lo fails (or is below the minimum), hi is the candidate
    while not ok(hi):
        if hi >= limit:
            return None, dict(sorted(tried.items()))
        lo, hi = hi, min(hi * 2, limit)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi, dict(sorted(tried.items()))


def load_at(
    bench: Bench, policy: PlacementPolicy, admission: AdmissionPolicy, attainment: float, steps: int = 8
) -> float:
    """The rate scale at which `policy` attains `attainment` (bisection on a log scale, attainment assumed to
    fall as load grows)."""
    if not 0 < attainment < 1:
        raise UsageError(f"attainment to match must be in (0, 1) (got {attainment})")

    def att(scale: float) -> float:
        return bench.run(policy, admission, dataclasses.replace(bench.scenario, rate_scale=scale)).slo_attainment

    lo, hi = bench.scenario.rate_scale, bench.scenario.rate_scale
    for _ in range(12):
        if att(hi) < attainment:
            break
        lo, hi = hi, hi * 2
    else:
        raise UsageError(f"{policy.name} stays above {attainment:.0%} attainment up to {hi:g}x load")
    if lo == hi:
        for _ in range(12):
            lo /= 2
            if att(lo) >= attainment:
                break
        else:
            raise UsageError(f"{policy.name} stays below {attainment:.0%} attainment down to {lo:g}x load")
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        if att(mid) >= attainment:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def sweep(
    bench: Bench, policies: Sequence[tuple[PlacementPolicy, AdmissionPolicy]], loads: Sequence[float]
) -> dict[str, list[tuple[float, float]]]:
    """Attainment of every policy at every rate scale (one workload per load, shared by the policies)."""
    out: dict[str, list[tuple[float, float]]] = {p.name: [] for p, _ in policies}
    for load in loads:
        s = dataclasses.replace(bench.scenario, rate_scale=load)
        w = bench.workload(s)
        for p, a in policies:
            out[p.name].append((load, bench.run(p, a, s, w).slo_attainment))
    return out


def placement_demands(n_models: int, catalogue: Catalogue, seed: int = 0) -> list[ModelDemand]:
    """Synthetic demands for timing placement: catalogue sizes, Zipf rates, a tenth of the models idle."""
    rng = np.random.default_rng(seed)
    kinds = [catalogue.model(n) for n in (catalogue.default_mix or [m.name for m in catalogue.models])]
    out = []
    for i in range(n_models):
        m = kinds[int(rng.integers(len(kinds)))]
        rate = 0.0 if rng.random() < 0.1 else 50.0 / (i + 1)
        out.append(
            ModelDemand(
                name=f"m{i}",
                weight_bytes=m.weight_bytes,
                rate_rps=rate,
                slo_s=0.05,
                tp=m.tp,
                min_kv_bytes=MIN_KV_TOKENS * m.kv_bytes_per_token,
            )
        )
    return out


def time_placement(
    policy: PlacementPolicy, models: list[ModelDemand], devices: list[DeviceSlot], repeats: int = 5
) -> dict[str, float]:
    """Median wall time of a fresh placement and of a re-plan (with the previous placement and changed rates)."""

    def timed(fn: Callable[[], object]) -> float:
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        return statistics.median(runs) * 1e3

    first = policy.place(models, devices)
    shifted = [dataclasses.replace(m, rate_rps=m.rate_rps * (0.5 + (i % 3) / 2)) for i, m in enumerate(models)]
    return {
        "place_ms": round(timed(lambda: policy.place(models, devices)), 3),
        "replan_ms": round(timed(lambda: policy.place(shifted, devices, first)), 3),
        "unplaced": float(sum(1 for d in first.devices if d is None)),
    }
