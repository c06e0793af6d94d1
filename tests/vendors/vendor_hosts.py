"""The fake hosts the vendor tests run on (installed into sys.modules by the fixtures in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

from prism_core.models import Device
from prism_core.testing import FakeAcl, FakeAmdSmi, FakeCudaEventDriver, FakeHip, FakeNvml, FakeRocml


@dataclass
class NvidiaHost:
    nvml: FakeNvml
    driver: FakeCudaEventDriver
    device: Device


@dataclass
class AmdHost:
    rocml: FakeRocml
    amdsmi: FakeAmdSmi
    hip: FakeHip
    device: Device


@dataclass
class AscendHost:
    acl: FakeAcl
    device: Device
