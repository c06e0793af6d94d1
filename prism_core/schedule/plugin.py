"""Built-in scheduling policies, registered through the `prism` entry-point group like any plugin."""

from __future__ import annotations

from prism_core.hookspecs import hookimpl
from prism_core.schedule.admission import FirstComeFirstServed, LeastSlack
from prism_core.schedule.placement import PrismPlacement, SpaceNoElasticPlacement, StaticPlacement, TimeSharingPlacement
from prism_core.schedule.policies import AdmissionPolicy, PlacementPolicy


@hookimpl
def prism_placement_policies() -> list[PlacementPolicy]:
    return [PrismPlacement(), StaticPlacement(), SpaceNoElasticPlacement(), TimeSharingPlacement()]


@hookimpl
def prism_admission_policies() -> list[AdmissionPolicy]:
    return [LeastSlack(), FirstComeFirstServed()]
