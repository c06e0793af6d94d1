"""The accelerator conformance suite on each vendor plugin with its SDK fakes installed: the success path
(devices, event timing, telemetry, faults) that this CPU-only host cannot take for real."""

from __future__ import annotations

from types import ModuleType

import pytest
from vendor_hosts import AmdHost, AscendHost, NvidiaHost

import prism_plugins.amd
import prism_plugins.ascend
import prism_plugins.nvidia
from prism_core.plugins import PluginHost
from prism_core.testing import AcceleratorConformance


class TestNvidiaOnFakes(AcceleratorConformance):
    @pytest.fixture
    def prism_plugin(self, nvidia_host: NvidiaHost) -> ModuleType:
        return prism_plugins.nvidia


class TestAmdOnFakes(AcceleratorConformance):
    @pytest.fixture
    def prism_plugin(self, amd_host: AmdHost) -> ModuleType:
        return prism_plugins.amd


class TestAscendOnFakes(AcceleratorConformance):
    @pytest.fixture
    def prism_plugin(self, ascend_host: AscendHost) -> ModuleType:
        return prism_plugins.ascend


@pytest.mark.parametrize(
    ("fixture", "plugin", "faults"),
    [
        ("nvidia_host", prism_plugins.nvidia, {"nvidia.clock_lock"}),
        ("amd_host", prism_plugins.amd, {"amd.perf_level_low"}),
        ("ascend_host", prism_plugins.ascend, set()),  # no torch_npu here, and no clock control in pyACL
    ],
    ids=["nvidia", "amd", "ascend"],
)
def test_fakes_take_the_success_path(
    fixture: str, plugin: ModuleType, faults: set[str], request: pytest.FixtureRequest
) -> None:
    """Guards the suite above against passing vacuously: every vendor really offers devices, timing, telemetry."""
    request.getfixturevalue(fixture)
    host = PluginHost()
    host.register(plugin, "under-test")
    (device,) = host.devices()
    backend = host.timing_backend(device)
    sampler = host.telemetry_sampler(device, 1.0)
    assert backend is not None and sampler is not None
    assert sampler.sample().values, "the fake answers, so some fields must be read"
    assert set(host.fault_injectors()) == faults, "torch loads are offered only with a torch that has the device"
    backend.close()
    sampler.close()


def test_without_the_vendor_nothing_is_offered() -> None:
    """On this host (no GPU libraries or drivers) every vendor plugin offers no fault and no backend."""
    for plugin in (prism_plugins.nvidia, prism_plugins.amd, prism_plugins.ascend):
        host = PluginHost()
        host.register(plugin, "under-test")
        if host.devices():
            pytest.skip("this host has an accelerator")
        assert host.fault_injectors() == {}
