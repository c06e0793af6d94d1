"""Placement and admission policies: registered as plugins, and doing what their docs say."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from prism_core.hookspecs import hookimpl
from prism_core.plugins import PluginHost
from prism_core.schedule import DeviceSlot, ModelDemand, PendingRequest, Placement, SharingMode
from prism_core.schedule.admission import LATE, FirstComeFirstServed, LeastSlack
from prism_core.schedule.placement import (
    PrismPlacement,
    SpaceNoElasticPlacement,
    StaticPlacement,
    TimeSharingPlacement,
    kvpr_place,
)
from prism_core.schedule.simstate import SimRequest
from prism_core.schedule.slots import SlotQueue

GB = 2**30


def demand(name: str, gib: float, rate: float, slo: float = 0.05, tp: int = 1) -> ModelDemand:
    return ModelDemand(name, int(gib * GB), rate, slo, tp=tp, min_kv_bytes=GB)


def fleet(n: int, gib: float = 80, speed: float = 1.0) -> list[DeviceSlot]:
    return [DeviceSlot(i, int(gib * GB), speed) for i in range(n)]


def test_builtin_policies_resolve_through_the_host(builtin_host: PluginHost) -> None:
    placements = builtin_host.placement_policies()
    admissions = builtin_host.admission_policies()
    assert {"prism", "static", "space-no-elastic", "time-sharing"} <= set(placements)
    assert {"least-slack", "fcfs"} <= set(admissions)
    for p in placements.values():
        assert p.admission in admissions, f"{p.name} pairs with an unregistered admission policy"


@dataclass
class _Greedy:
    """A third-party placement: everything on device 0."""

    name: str = "all-on-zero"
    description: str = "test policy"
    admission: str = "fcfs"
    mode: SharingMode = field(default_factory=SharingMode)

    def place(
        self, models: list[ModelDemand], devices: list[DeviceSlot], previous: Placement | None = None
    ) -> Placement:
        return Placement(devices=tuple((0,) for _ in models))


class _ThirdParty:
    @hookimpl
    def prism_placement_policies(self) -> list[_Greedy]:
        return [_Greedy()]


def test_third_party_policy_is_found_by_name(builtin_host: PluginHost) -> None:
    builtin_host.register(_ThirdParty(), "third-party")
    assert builtin_host.placement_policies()["all-on-zero"].place([demand("a", 1, 1)], fleet(2)).devices == ((0,),)


def test_kvpr_puts_heavy_models_apart_and_balances_pressure() -> None:
    models = [demand("hot", 16, 10), demand("warm", 16, 5), demand("cool", 16, 4), demand("cold", 16, 1)]
    p = PrismPlacement().place(models, fleet(2))
    assert p.devices[0] != p.devices[1]  # the two heaviest never share
    assert p.devices[2] == p.devices[1]  # the next goes where pressure stays lowest: beside "warm"
    assert len(p.pressure) == 2 and min(p.pressure) > 0
    assert all(d is not None for d in p.devices)


def test_migration_threshold_keeps_the_old_device_unless_the_gain_is_large() -> None:
    models = [demand("a", 16, 10), demand("b", 16, 10)]
    old = Placement(devices=((0,), (0,)))
    kept = kvpr_place(models, fleet(2), old, threshold=10.0, resident=False)
    assert kept.devices == ((0,), (0,)) and kept.migrations == 0
    moved = kvpr_place(models, fleet(2), old, threshold=0.0, resident=False)
    assert sorted(moved.devices) == [(0,), (1,)] and moved.migrations == 1


def test_tensor_parallel_model_takes_k_devices_and_stays_pinned() -> None:
    models = [demand("big", 140, 5, tp=2), demand("small", 16, 5)]
    p = PrismPlacement().place(models, fleet(3))
    assert p.devices[0] is not None and len(p.devices[0]) == 2
    assert p.devices[1] is not None and p.devices[1][0] not in p.devices[0]
    again = PrismPlacement().place([demand("big", 140, 50, tp=2), models[1]], fleet(3), p)
    assert again.devices[0] == p.devices[0]


def test_heterogeneous_devices_prefer_the_faster_one() -> None:
    devices = [DeviceSlot(0, 80 * GB, 0.6), DeviceSlot(1, 80 * GB, 1.0)]
    assert PrismPlacement().place([demand("a", 16, 10)], devices).devices == ((1,),)


def test_resident_policies_leave_what_does_not_fit_unplaced_with_a_reason() -> None:
    models = [demand(f"m{i}", 30, 1) for i in range(3)]
    p = SpaceNoElasticPlacement().place(models, fleet(1))
    assert p.devices.count(None) == 1 and len(p.reasons) == 1
    assert p.kv_share is not None and sum(s for s in p.kv_share if s) == pytest.approx(1.0, abs=0.05)
    # Prism time-shares instead: every model gets a device.
    assert None not in PrismPlacement().place(models, fleet(1)).devices


def test_static_gives_each_model_a_slice_and_spreads_them() -> None:
    p = StaticPlacement().place([demand(f"m{i}", 8, 1) for i in range(4)], fleet(2))
    assert sorted(d[0] for d in p.devices if d) == [0, 0, 1, 1]
    too_big = StaticPlacement().place([demand(f"m{i}", 30, 1) for i in range(3)], fleet(1))
    assert too_big.devices.count(None) >= 1


def test_time_sharing_spreads_load() -> None:
    p = TimeSharingPlacement().place([demand("a", 16, 10), demand("b", 16, 9), demand("c", 16, 1)], fleet(2))
    assert p.devices[0] != p.devices[1]


def _req(model: int, arrival: float, slo: float, prefill: float, rid: int) -> SimRequest:
    return SimRequest(model=model, arrival_s=arrival, prompt_tokens=10, slo_ttft_s=slo, est_prefill_s=prefill, rid=rid)


class _TakeAll:
    def __init__(self, now: float, room: int) -> None:
        self.now_s = now
        self.room = room

    def try_admit(self, request: PendingRequest) -> bool:
        if self.room <= 0:
            return False
        self.room -= 1
        return True


def _queues(policy: LeastSlack | FirstComeFirstServed, reqs: list[SimRequest]) -> dict[int, SlotQueue]:
    queues: dict[int, SlotQueue] = {}
    for r in reqs:
        r.priority = policy.priority(r)
        queues.setdefault(r.model, SlotQueue()).push(r)
    return queues


def test_least_slack_orders_across_models_by_deadline_minus_prefill() -> None:
    reqs = [_req(0, 0.0, 1.0, 0.1, 1), _req(1, 0.2, 0.3, 0.0, 2), _req(0, 0.1, 5.0, 0.0, 3)]
    admitted = LeastSlack().admit(_queues(LeastSlack(), reqs), _TakeAll(now=0.0, room=2))
    assert [r.rid for r in admitted] == [2, 1]  # slack 0.5 before 0.9; 5.1 waits (budget)
    fcfs = FirstComeFirstServed().admit(_queues(FirstComeFirstServed(), reqs), _TakeAll(now=0.0, room=3))
    assert [r.rid for r in fcfs] == [1, 3, 2]


def test_least_slack_serves_hopeless_requests_last() -> None:
    late, fresh = _req(0, 0.0, 0.1, 0.0, 1), _req(0, 0.9, 1.0, 0.0, 2)
    admitted = LeastSlack().admit(_queues(LeastSlack(), [late, fresh]), _TakeAll(now=1.0, room=1))
    assert [r.rid for r in admitted] == [2]
    assert late.priority >= LATE


def test_sharing_modes_differ_where_the_baselines_do() -> None:
    policies = (PrismPlacement(), StaticPlacement(), SpaceNoElasticPlacement(), TimeSharingPlacement())
    modes = {p.name: p.mode for p in policies}
    assert modes["prism"].memory == "elastic" and modes["prism"].replan_s
    assert modes["static"].compute == "partitioned"
    assert modes["space-no-elastic"].memory == "fixed" and modes["space-no-elastic"].max_active is None
    assert modes["time-sharing"].max_active == 1
