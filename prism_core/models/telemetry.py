"""Resource telemetry of one device at one instant."""

from __future__ import annotations

from pydantic import Field

from prism_core.models.base import Frozen


class TelemetrySample(Frozen):
    """Values by metric name (names in prism_core.export.names), and what could not be read, with why.

    A field the device has but the sampler could not read goes into `unreadable`, never in `values` as zero.
    """

    device: str
    ts_ns: int
    values: dict[str, float] = Field(default_factory=dict)
    unreadable: dict[str, str] = Field(default_factory=dict)
