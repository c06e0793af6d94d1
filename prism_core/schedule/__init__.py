"""Schedule: placement across devices, admission per device, and the serving simulator."""

from prism_core.schedule.policies import AdmissionPolicy, PlacementPolicy

__all__ = ["AdmissionPolicy", "PlacementPolicy"]
