"""Scheduling policies: the interfaces placement and admission plugins implement, and the values they trade.

Two levels (after Prism, arXiv 2505.04021): a global `PlacementPolicy` decides which models live on which
devices, and how co-located models share a device (`SharingMode`); a local `AdmissionPolicy`, one per device,
decides which waiting request runs next while the device's KV budget allows. The simulator and a serving
controller both drive policies through these types only, so a third-party policy runs in either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

MemoryMode = Literal["elastic", "fixed"]
ComputeMode = Literal["shared", "partitioned"]


@dataclass(frozen=True, slots=True)
class SharingMode:
    """How models placed on the same device share it.

    memory: "elastic" = one KV page pool that co-located models draw from on demand (the memory broker);
        "fixed" = each model gets a fixed KV share decided at placement (`Placement.kv_share`).
    compute: "shared" = co-located models' iterations interleave on the whole device;
        "partitioned" = each model runs on a fixed slice (1/k of memory, bandwidth and FLOP/s), as if dedicated.
    max_active: at most this many models resident per device at once (1 = time sharing only); None = as many
        as memory holds, activating idle models on demand and deactivating idle ones.
    replan_s: re-run placement this often with observed rates (None: place once, never migrate).
    idle_timeout_s: deactivate a resident model idle this long, so its weights' memory goes to the KV pool
        (None: never on a timer; models may still be deactivated on demand when `max_active` is None).
    """

    memory: MemoryMode = "elastic"
    compute: ComputeMode = "shared"
    max_active: int | None = None
    replan_s: float | None = None
    idle_timeout_s: float | None = None
    preload: bool = True


@dataclass(frozen=True, slots=True)
class ModelDemand:
    """What placement knows of one model: its size and its recent load."""

    name: str
    weight_bytes: int
    rate_rps: float
    slo_s: float
    tp: int = 1
    min_kv_bytes: int = 0

    @property
    def weighted_rate(self) -> float:
        """Request rate over latency SLO: Prism's measure of how much KV pressure a model brings."""
        return self.rate_rps / self.slo_s


@dataclass(frozen=True, slots=True)
class DeviceSlot:
    """What placement knows of one device. `speed` scales pressure on faster or slower devices (1.0 = reference)."""

    index: int
    memory_bytes: int
    speed: float = 1.0


@dataclass(frozen=True, slots=True)
class Placement:
    """Devices per model (by position in the demand list; None = could not be placed) and the plan's facts.

    kv_share: for fixed-memory modes, the fraction of its device's KV memory each model owns.
    pressure: the resulting KV pressure ratio per device (the placement objective, smaller is better).
    migrations: models moved relative to the previous placement.
    """

    devices: tuple[tuple[int, ...] | None, ...]
    kv_share: tuple[float, ...] | None = None
    pressure: tuple[float, ...] = ()
    migrations: int = 0
    reasons: Mapping[int, str] = field(default_factory=dict)

    def models_on(self, device: int) -> list[int]:
        return [m for m, devs in enumerate(self.devices) if devs is not None and device in devs]


@runtime_checkable
class PlacementPolicy(Protocol):
    """Global level: decides which models live on which devices, and how they share them."""

    name: str
    description: str
    mode: SharingMode
    admission: str
    """Name of the admission policy this placement is designed with (`prism simulate --admission` overrides)."""

    def place(
        self, models: Sequence[ModelDemand], devices: Sequence[DeviceSlot], previous: Placement | None = None
    ) -> Placement:
        """Assign every model to devices (a TP-k model to k of them); keep `previous` where moving gains little."""
        ...


@dataclass(slots=True, eq=False)
class PendingRequest:
    """A request waiting for admission on a device. `priority` is set by the admission policy (lower first)."""

    model: int
    arrival_s: float
    prompt_tokens: int
    slo_ttft_s: float
    est_prefill_s: float
    priority: float = 0.0


class ModelQueue(Protocol):
    """One model's waiting requests on a device, in the admission policy's priority order."""

    def peek(self) -> PendingRequest | None: ...

    def pop(self) -> PendingRequest: ...

    def push(self, request: PendingRequest) -> None:
        """Put a request (back) in the queue at its `priority`, which the policy may have changed."""
        ...


class AdmissionBudget(Protocol):
    """The device's memory broker (or the simulator's model of it), seen by an admission policy."""

    now_s: float
    """The time admission runs at (the simulator's clock, or the server's monotonic clock)."""

    def try_admit(self, request: PendingRequest) -> bool:
        """Reserve KV and batch room for `request` and return True, or return False and change nothing."""
        ...


@runtime_checkable
class AdmissionPolicy(Protocol):
    """Local level, one per device: decides which queued request runs next, within the memory budget."""

    name: str
    description: str

    def priority(self, request: PendingRequest) -> float:
        """Sort key of a waiting request; lower is admitted first (across all models on the device)."""
        ...

    def admit(self, queues: Mapping[int, ModelQueue], budget: AdmissionBudget) -> list[PendingRequest]:
        """Pop and return the requests to start now, in order, taking budget for each."""
        ...
