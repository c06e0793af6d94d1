"""Built-in placement policies: Prism's KV-pressure placement and three baselines.

KV pressure ratio of a device (Prism, arXiv 2505.04021, Algorithm 1): the sum over its models of request rate
/ latency SLO, divided by the memory left for KV cache (device memory minus the weights placed there). Prism
places models in decreasing weighted rate, each on the feasible device where the resulting pressure is
lowest, which keeps the worst device's pressure low. Extensions here: a device's pressure is also divided by
its relative speed (heterogeneous fleets), a tensor-parallel model takes its k lowest-pressure devices with
1/k of its weights and load on each, and a model with no recent traffic does not count its weights (it will
be deactivated, so its memory goes to the KV pool). Re-planning keeps a model where it is unless moving it
lowers the pressure by more than the migration threshold; tensor-parallel models never move (their gang is
fixed for the run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from prism_core.schedule.policies import DeviceSlot, ModelDemand, Placement, SharingMode


@dataclass(slots=True)
class _Fleet:
    memory: np.ndarray
    speed: np.ndarray
    weights: np.ndarray
    load: np.ndarray  # weighted rate per device

    @classmethod
    def of(cls, devices: Sequence[DeviceSlot]) -> _Fleet:
        n = len(devices)
        return cls(
            memory=np.array([d.memory_bytes for d in devices], dtype=np.float64),
            speed=np.array([d.speed for d in devices], dtype=np.float64),
            weights=np.zeros(n),
            load=np.zeros(n),
        )

    def pressure(self) -> np.ndarray:
        kv = np.maximum(self.memory - self.weights, 1.0) * self.speed
        out: np.ndarray = self.load / kv
        return out


def _order(models: Sequence[ModelDemand]) -> list[int]:
    """Heaviest weighted rate first; ties (idle models) biggest first so they find room."""
    return sorted(range(len(models)), key=lambda j: (-models[j].weighted_rate, -models[j].weight_bytes))


def kvpr_place(
    models: Sequence[ModelDemand],
    devices: Sequence[DeviceSlot],
    previous: Placement | None = None,
    *,
    threshold: float = 0.0,
    resident: bool = True,
) -> Placement:
    """Greedy KV-pressure placement.

    resident=True: every placed model's weights stay on its device (no time sharing), so a model that fits
    nowhere is left unplaced. resident=False: idle models' weights are not counted, and a model that fits
    nowhere beside the others goes, time-shared, to the device with the fewest weights where it fits alone.
    """
    fleet = _Fleet.of(devices)
    out: list[tuple[int, ...] | None] = [None] * len(models)
    reasons: dict[int, str] = {}
    migrations = 0
    for j in _order(models):
        m = models[j]
        k = m.tp
        if k > len(devices):
            reasons[j] = f"needs {k} devices for tensor parallelism, the fleet has {len(devices)}"
            continue
        share_w = m.weight_bytes / k
        counted = share_w if (resident or m.rate_rps > 0) else 0.0
        free_after = fleet.memory - fleet.weights - counted
        feasible = free_after >= m.min_kv_bytes / k
        alone = fleet.memory >= share_w + m.min_kv_bytes / k
        pressure = (fleet.load + m.weighted_rate / k) / (np.maximum(free_after, 1.0) * fleet.speed)
        old = previous.devices[j] if previous is not None and j < len(previous.devices) else None
        if feasible.sum() >= k:
            score = np.where(feasible, pressure, np.inf)
        elif not resident and alone.sum() >= k:
            counted = 0.0  # time-shared: it swaps in when its turn comes
            score = np.where(alone, fleet.weights, np.inf)
        else:
            need = (share_w + m.min_kv_bytes / k) / 2**30
            reasons[j] = f"needs {need:.1f} GiB per device and no {k} device(s) have it free"
            continue
        chosen = _choose(score, k, old, k > 1, threshold)
        if old is not None and chosen != old:
            migrations += 1
        for d in chosen:
            fleet.weights[d] += counted
            fleet.load[d] += m.weighted_rate / k
        out[j] = chosen
    return Placement(
        devices=tuple(out), pressure=tuple(fleet.pressure().tolist()), migrations=migrations, reasons=reasons
    )


def _choose(score: np.ndarray, k: int, old: tuple[int, ...] | None, pinned: bool, threshold: float) -> tuple[int, ...]:
    if k == 1:
        best = int(np.argmin(score))
        if old is not None and np.isfinite(score[old[0]]) and score[old[0]] <= score[best] * (1 + threshold):
            return old
        return (best,)
    if old is not None and pinned:
        return old
    return tuple(sorted(int(d) for d in np.argpartition(score, k - 1)[:k]))


def fixed_kv_split(models: Sequence[ModelDemand], devices: Sequence[DeviceSlot], placement: Placement) -> Placement:
    """MuxServe-like fixed KV split: on each device, each model gets its minimum plus a share of the rest of the
    KV memory proportional to its weighted rate (equal shares where no model has load)."""
    share = [0.0] * len(models)
    for dev in devices:
        on = placement.models_on(dev.index)
        if not on:
            continue
        kv = dev.memory_bytes - sum(models[j].weight_bytes / models[j].tp for j in on)
        floor = sum(models[j].min_kv_bytes / models[j].tp for j in on)
        load = sum(models[j].weighted_rate for j in on)
        for j in on:
            frac = models[j].weighted_rate / load if load > 0 else 1 / len(on)
            share[j] = (models[j].min_kv_bytes / models[j].tp + max(kv - floor, 0.0) * frac) / max(kv, 1.0)
    return Placement(
        devices=placement.devices,
        kv_share=tuple(share),
        pressure=placement.pressure,
        migrations=placement.migrations,
        reasons=placement.reasons,
    )


@dataclass(slots=True)
class PrismPlacement:
    """KV-pressure placement, elastic KV, time sharing on demand, re-planned every minute."""

    name: str = "prism"
    description: str = "KV-pressure placement with migration threshold; elastic KV pool; activation on demand"
    admission: str = "least-slack"
    migration_threshold: float = 0.2
    mode: SharingMode = field(default_factory=lambda: SharingMode(memory="elastic", compute="shared", replan_s=60.0))

    def place(
        self, models: Sequence[ModelDemand], devices: Sequence[DeviceSlot], previous: Placement | None = None
    ) -> Placement:
        return kvpr_place(models, devices, previous, threshold=self.migration_threshold, resident=False)


@dataclass(slots=True)
class SpaceNoElasticPlacement:
    """MuxServe-like: weights of every co-located model resident, KV split fixed at placement, compute shared."""

    name: str = "space-no-elastic"
    description: str = "space sharing with a fixed KV split per model (MuxServe-like); no time sharing"
    admission: str = "fcfs"
    mode: SharingMode = field(default_factory=lambda: SharingMode(memory="fixed", compute="shared"))

    def place(
        self, models: Sequence[ModelDemand], devices: Sequence[DeviceSlot], previous: Placement | None = None
    ) -> Placement:
        return fixed_kv_split(models, devices, kvpr_place(models, devices, resident=True))


@dataclass(slots=True)
class StaticPlacement:
    """Static partitioning: every model its own fixed, equal slice of a device's memory and compute, as if each
    had a (smaller) dedicated device. Models are spread so each device holds as few as possible."""

    name: str = "static"
    description: str = "static partitioning: each model a fixed equal slice of a device (dedicated deployment)"
    admission: str = "fcfs"
    mode: SharingMode = field(default_factory=lambda: SharingMode(memory="fixed", compute="partitioned"))

    def place(
        self, models: Sequence[ModelDemand], devices: Sequence[DeviceSlot], previous: Placement | None = None
    ) -> Placement:
        count = np.zeros(len(devices))
        biggest = np.zeros(len(devices))  # the largest per-device need on each device (it bounds the slice)
        memory = np.array([d.memory_bytes for d in devices], dtype=np.float64)
        out: list[tuple[int, ...] | None] = [None] * len(models)
        reasons: dict[int, str] = {}
        for j in sorted(range(len(models)), key=lambda j: -models[j].weight_bytes / models[j].tp):
            m = models[j]
            need = (m.weight_bytes + m.min_kv_bytes) / m.tp
            fits = np.maximum(biggest, need) <= memory / (count + 1)
            if fits.sum() < m.tp:
                reasons[j] = f"no {m.tp} device(s) have a free slice of {need / 2**30:.1f} GiB"
                continue
            score = np.where(fits, count, np.inf)
            chosen = tuple(sorted(int(d) for d in np.argpartition(score, m.tp - 1)[: m.tp]))
            for d in chosen:
                count[d] += 1
                biggest[d] = max(biggest[d], need)
            out[j] = chosen
        return Placement(devices=tuple(out), reasons=reasons)


@dataclass(slots=True)
class TimeSharingPlacement:
    """Time sharing only: one model resident per device at a time, swapped on demand; models spread by load."""

    name: str = "time-sharing"
    description: str = "time sharing only: one model resident per device, activated on demand"
    admission: str = "fcfs"
    mode: SharingMode = field(default_factory=lambda: SharingMode(memory="elastic", compute="shared", max_active=1))

    def place(
        self, models: Sequence[ModelDemand], devices: Sequence[DeviceSlot], previous: Placement | None = None
    ) -> Placement:
        load = np.zeros(len(devices))
        memory = np.array([d.memory_bytes for d in devices], dtype=np.float64)
        out: list[tuple[int, ...] | None] = [None] * len(models)
        reasons: dict[int, str] = {}
        for j in _order(models):
            m = models[j]
            alone = memory >= (m.weight_bytes + m.min_kv_bytes) / m.tp
            if alone.sum() < m.tp:
                reasons[j] = f"fits on fewer than {m.tp} device(s) even alone"
                continue
            score = np.where(alone, load, np.inf)
            chosen = tuple(sorted(int(d) for d in np.argpartition(score, m.tp - 1)[: m.tp]))
            for d in chosen:
                load[d] += m.weighted_rate / m.tp + 1e-12  # tiny term spreads idle models too
            out[j] = chosen
        return Placement(devices=tuple(out), reasons=reasons)
