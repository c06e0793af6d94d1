"""The cpu plugin is always available, reads real facts, and passes the accelerator conformance suite."""

from __future__ import annotations

import os
import time
from types import ModuleType

import pytest

import prism_plugins.cpu
from prism_core.export import names
from prism_core.plugins import PluginHost
from prism_core.testing import AcceleratorConformance
from prism_plugins.cpu.faults import ComputeSqueeze
from prism_plugins.cpu.host import cpu_device, meminfo
from prism_plugins.cpu.telemetry import ProcTelemetry


class TestCpuConformance(AcceleratorConformance):
    @pytest.fixture
    def prism_plugin(self) -> ModuleType:
        return prism_plugins.cpu


def test_cpu_device_facts_come_from_this_host() -> None:
    d = cpu_device()
    assert d.id == "cpu:0" and not d.simulated
    assert d.properties["usable_cpus"] == len(os.sched_getaffinity(0))
    assert 0 < d.memory_total_bytes <= meminfo()["MemTotal"]
    assert int(d.properties["numa_nodes"]) >= 1


def test_telemetry_sees_a_busy_cpu() -> None:
    sampler = ProcTelemetry(cpu_device())
    fault = ComputeSqueeze()
    fault.start(1.0)
    try:
        time.sleep(0.5)
        busy = sampler.sample()
    finally:
        fault.stop()
    # With every usable core running matrix multiplies, the host is measurably busy.
    assert busy.values[names.SYSTEM_CPU_UTILIZATION] > 0.3
    assert busy.values[names.SYSTEM_MEMORY_USAGE] > 0
    assert busy.values[names.SYSTEM_MEMORY_LIMIT] >= busy.values[names.SYSTEM_MEMORY_USAGE]


def test_telemetry_back_to_back_says_why_not_zero() -> None:
    sampler = ProcTelemetry(cpu_device())
    sampler.sample()
    second = sampler.sample()  # no jiffy has passed: utilisation is unknown, not 0
    if names.SYSTEM_CPU_UTILIZATION in second.unreadable:
        assert "no CPU time" in second.unreadable[names.SYSTEM_CPU_UTILIZATION]
    else:
        assert 0 <= second.values[names.SYSTEM_CPU_UTILIZATION] <= 1


def test_cpu_timing_counts_cpu_time_not_sleep(builtin_host: PluginHost) -> None:
    backend = builtin_host.timing_backend(cpu_device())
    assert backend is not None
    a = backend.mark()
    time.sleep(0.05)
    b = backend.mark()
    sum(i * i for i in range(300_000))
    c = backend.mark()
    slept, worked = backend.elapsed_ns(a, b), backend.elapsed_ns(b, c)
    assert slept is not None and worked is not None
    assert slept < 10_000_000  # sleeping for 50 ms uses almost no CPU
    assert worked > slept


def test_cpu_faults_are_offered_by_name(builtin_host: PluginHost) -> None:
    faults = builtin_host.fault_injectors()
    assert isinstance(faults["cpu.compute_squeeze"], ComputeSqueeze)
    assert all(f.resource for f in faults.values())


def test_compute_squeeze_rejects_bad_intensity() -> None:
    with pytest.raises(ValueError, match="intensity"):
        ComputeSqueeze().start(0)
