"""Schedule: placement across devices, admission per device, and the multi-model serving simulator."""

from prism_core.schedule.policies import (
    AdmissionBudget,
    AdmissionPolicy,
    DeviceSlot,
    ModelDemand,
    ModelQueue,
    PendingRequest,
    Placement,
    PlacementPolicy,
    SharingMode,
)

__all__ = [
    "AdmissionBudget",
    "AdmissionPolicy",
    "DeviceSlot",
    "ModelDemand",
    "ModelQueue",
    "PendingRequest",
    "Placement",
    "PlacementPolicy",
    "SharingMode",
]
