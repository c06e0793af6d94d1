"""Typed models for everything that crosses a boundary."""

from prism_core.models.base import Frozen
from prism_core.models.devices import Device, Unavailable, VendorProbe
from prism_core.models.plugins import PluginInfo
from prism_core.models.records import (
    SCHEMA_VERSION,
    Alert,
    BatchRecord,
    ForwardMode,
    Record,
    RequestRecord,
    StageTiming,
)
from prism_core.models.telemetry import TelemetrySample

__all__ = [
    "SCHEMA_VERSION",
    "Alert",
    "BatchRecord",
    "Device",
    "ForwardMode",
    "Frozen",
    "PluginInfo",
    "Record",
    "RequestRecord",
    "StageTiming",
    "TelemetrySample",
    "Unavailable",
    "VendorProbe",
]
