"""Fixtures that install the vendor fakes of prism_core.testing into sys.modules, as a GPU host would have them."""

from __future__ import annotations

import sys

import pytest
from vendor_hosts import AmdHost, AscendHost, NvidiaHost

from prism_core.models import Device
from prism_core.testing import FakeAcl, FakeAmdSmi, FakeCudaEventDriver, FakeGpu, FakeHip, FakeNvml, FakeRocml


@pytest.fixture
def nvidia_host(monkeypatch: pytest.MonkeyPatch) -> NvidiaHost:
    gpu = FakeGpu(name="Fake H100", memory_used=3 * 2**30)
    nvml = FakeNvml(gpus=[gpu])
    driver = FakeCudaEventDriver(pci_bus_ids=[gpu.pci_bus_id])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", driver)
    device = Device(
        id="nvidia:0",
        vendor="nvidia",
        index=0,
        name=gpu.name,
        memory_total_bytes=gpu.memory_total,
        properties={"pci_bus_id": gpu.pci_bus_id},
    )
    return NvidiaHost(nvml, driver, device)


@pytest.fixture
def amd_host(monkeypatch: pytest.MonkeyPatch) -> AmdHost:
    gpus = [FakeGpu(name="MI300X", memory_total=192 * 2**30, memory_used=2**30)]
    host = AmdHost(
        FakeRocml(gpus=gpus),
        FakeAmdSmi(gpus=gpus),
        FakeHip(),
        Device(id="amd:0", vendor="amd", index=0, name="MI300X", memory_total_bytes=192 * 2**30),
    )
    monkeypatch.setitem(sys.modules, "pyrsmi.rocml", host.rocml)
    monkeypatch.setitem(sys.modules, "amdsmi", host.amdsmi)
    monkeypatch.setitem(sys.modules, "hip.hip", host.hip)
    return host


@pytest.fixture
def ascend_host(monkeypatch: pytest.MonkeyPatch) -> AscendHost:
    acl = FakeAcl(npus=[FakeGpu(name="910B3", memory_total=64 * 2**30, utilization=(40, 20))])
    monkeypatch.setitem(sys.modules, "acl", acl)
    monkeypatch.setenv("PATH", "/nonexistent")  # no npu-smi, as on most hosts: its fields must say so
    device = Device(id="ascend:0", vendor="ascend", index=0, name="Ascend910B", memory_total_bytes=64 * 2**30)
    return AscendHost(acl, device)
