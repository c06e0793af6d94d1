"""Devices and the typed answer of a vendor that is not there."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from prism_core.models.base import Frozen

Scalar = int | float | str | bool


class Device(Frozen):
    """One accelerator (or the host CPU) that a plugin can time, sample and map memory on."""

    id: str = Field(description="stable id, '<vendor>:<index>', e.g. 'cpu:0', 'nvidia:1'")
    vendor: str
    index: int
    name: str
    memory_total_bytes: int
    simulated: bool = Field(False, description="True only for devices that do not exist in hardware")
    properties: dict[str, Scalar] = Field(default_factory=dict, description="vendor facts: cores, NUMA, PCI")


class Unavailable(Frozen):
    """Why a vendor (or one of its features) cannot be used here, in the vendor's own words."""

    vendor: str
    reason: str
    error_type: str | None = Field(None, description="the vendor exception's class name, when one was raised")

    def __str__(self) -> str:
        return f"{self.vendor}: {self.reason}" + (f" ({self.error_type})" if self.error_type else "")


class VendorProbe(Frozen):
    """What one accelerator plugin found: devices, or the reason there are none."""

    plugin: str
    vendor: str
    status: Literal["available", "unavailable"]
    devices: list[Device] = Field(default_factory=list)
    unavailable: Unavailable | None = None
