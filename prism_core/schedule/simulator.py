"""The discrete-event multi-model serving simulator: places models, runs every executor, re-plans, measures.

Executors (see executor.py) only interact through placement, so between two re-planning points each runs on
its own clock; at a re-planning point the placement policy sees the request rates of the last window and
models it moves are migrated (their running requests are preempted and recomputed on the new device, as the
Prism prototype does; KV is never copied).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from prism_core.schedule.catalogue import DeviceSpec, ModelSpec
from prism_core.schedule.cost import CostModel
from prism_core.schedule.executor import Executor
from prism_core.schedule.policies import (
    AdmissionPolicy,
    DeviceSlot,
    ModelDemand,
    Placement,
    PlacementPolicy,
)
from prism_core.schedule.results import PolicyResult, summarise
from prism_core.schedule.simstate import Arrivals, Recorder
from prism_core.schedule.workload import Workload

MIN_KV_TOKENS = 4096  # a model is only made resident with room for one long request's KV beside it
MEMORY_SAMPLES = 60
RATE_SMOOTHING = 0.5  # weight of the last window in the re-planning rate estimate


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything one simulation needs besides the policies: models (SLOs resolved), devices, requests, costs."""

    models: list[ModelSpec]
    devices: list[DeviceSpec]
    workload: Workload
    cost: CostModel
    trace: str = "both"
    rate_scale: float = 1.0
    seed: int = 0
    queue_cap: int | None = None  # waiting requests per model per device; arrivals beyond it are rejected

    def demands(self, rates: np.ndarray) -> list[ModelDemand]:
        return [
            ModelDemand(
                name=m.name,
                weight_bytes=m.weight_bytes,
                rate_rps=float(r),
                slo_s=m.slo_tpot_s or 1.0,
                tp=m.tp,
                min_kv_bytes=MIN_KV_TOKENS * m.kv_bytes_per_token,
            )
            for m, r in zip(self.models, rates, strict=True)
        ]

    def slots(self) -> list[DeviceSlot]:
        ref = max(d.bandwidth_Bps for d in self.devices)
        return [DeviceSlot(i, d.memory_bytes, d.bandwidth_Bps / ref) for i, d in enumerate(self.devices)]


class _Run:
    def __init__(self, setup: Setup, policy: PlacementPolicy, admission: AdmissionPolicy) -> None:
        self.setup = setup
        self.policy = policy
        self.admission = admission
        w = setup.workload
        slo_ttft = np.array([m.slo_ttft_s or math.inf for m in setup.models])
        self.arrivals = Arrivals(w, slo_ttft)
        self.rec = Recorder(len(w), np.linspace(0.0, w.duration_s, MEMORY_SAMPLES, endpoint=False))
        self.executors: list[Executor] = []
        self.home: dict[int, Executor] = {}  # model -> executor holding it
        self.by_device: dict[int, Executor] = {}
        self.migrations = 0

    def _executor(self, spec: DeviceSpec, devices: tuple[int, ...], shares: dict[int, float] | None = None) -> Executor:
        ex = Executor(
            len(self.executors),
            spec,
            devices,
            self.policy.mode,
            self.admission,
            self.setup.cost,
            self.arrivals,
            self.rec,
            shares,
            self.setup.queue_cap,
        )
        self.executors.append(ex)
        return ex

    def build(self, placement: Placement, rates: np.ndarray) -> None:
        devs = self.setup.devices
        if self.policy.mode.compute == "partitioned":
            count = [len(placement.models_on(d)) for d in range(len(devs))]
            for j, on in enumerate(placement.devices):
                if on is not None:
                    spec = DeviceSpec.combined(devs[d].scaled(1 / count[d]) for d in on)
                    shares = {d: 1 / count[d] for d in on}
                    self._add(self._executor(spec, on, shares), j, placement)
        else:
            for gang in _gangs(placement, len(devs)):
                ex = self._executor(DeviceSpec.combined(devs[d] for d in gang), gang)
                for d in gang:
                    self.by_device[d] = ex
            for j, on in enumerate(placement.devices):
                if on is not None:
                    self._add(self.by_device[on[0]], j, placement)
        for ex in self.executors:
            ex.preload(sorted(ex.slots, key=lambda m: -rates[m]))

    def _add(self, ex: Executor, model: int, placement: Placement) -> None:
        share = placement.kv_share[model] if placement.kv_share is not None else None
        spec = self.setup.models[model]
        ex.add_model(model, spec, MIN_KV_TOKENS * spec.kv_bytes_per_token, share)
        self.home[model] = ex

    def replan(self, placement: Placement) -> None:
        for j, on in enumerate(placement.devices):
            if on is None:
                continue
            target = self.by_device[on[0]]
            source = self.home.get(j)
            if source is target:
                continue
            moved = source.remove_model(j) if source is not None else []
            self._add(target, j, placement)
            target.enqueue(moved)
            self.migrations += source is not None


def _gangs(placement: Placement, n_devices: int) -> list[tuple[int, ...]]:
    """Devices joined by a tensor-parallel model run as one executor (union-find over the TP groups)."""
    parent = list(range(n_devices))

    def root(d: int) -> int:
        while parent[d] != d:
            parent[d] = parent[parent[d]]
            d = parent[d]
        return d

    for on in placement.devices:
        if on is not None:
            for d in on[1:]:
                parent[root(d)] = root(on[0])
    groups: dict[int, list[int]] = {}
    for d in range(n_devices):
        groups.setdefault(root(d), []).append(d)
    return [tuple(g) for g in groups.values()]


def simulate(setup: Setup, policy: PlacementPolicy, admission: AdmissionPolicy) -> PolicyResult:
    """Run one policy over the setup's workload and summarise what the requests saw."""
    started = time.perf_counter()
    w = setup.workload
    run = _Run(setup, policy, admission)
    rates = w.rates()
    placement = policy.place(setup.demands(rates), setup.slots())
    run.build(placement, rates)
    step = policy.mode.replan_s
    bounds = list(np.arange(step, w.duration_s, step)) if step else []
    estimate = rates
    for t in [*bounds, w.duration_s]:
        for ex in run.executors:
            ex.run_until(float(t))
        if t < w.duration_s:
            window = w.rates(float(t) - (step or 0.0), float(t))
            estimate = RATE_SMOOTHING * window + (1 - RATE_SMOOTHING) * estimate
            placement = policy.place(setup.demands(estimate), setup.slots(), placement)
            run.replan(placement)
    drain_end = w.duration_s + max(60.0, 0.25 * w.duration_s)
    for ex in run.executors:
        ex.run_until(drain_end)
    return summarise(
        setup=setup,
        policy=policy.name,
        admission=admission.name,
        rec=run.rec,
        executors=run.executors,
        migrations=run.migrations,
        unplaced=[setup.models[j].name for j, on in enumerate(placement.devices) if on is None],
        wall_s=time.perf_counter() - started,
    )
