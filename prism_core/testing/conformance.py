"""Conformance suites every plugin runs, ours and third-party alike.

Subclass in a test module and provide the fixture named in the class docstring:

    from prism_core.testing import AcceleratorConformance

    class TestMyAccelerator(AcceleratorConformance):
        @pytest.fixture
        def prism_plugin(self):
            import my_plugin
            return my_plugin
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from prism_core import hookspecs
from prism_core.capture import CANONICAL_STAGES, FrameworkAdapter, TelemetrySampler, TimingBackend
from prism_core.faults import FaultInjector
from prism_core.models import Device, Unavailable
from prism_core.plugins import PluginHost
from prism_core.testing.recorders import RecordingRecorder

SPEC_NAMES = frozenset(n for n in dir(hookspecs) if n.startswith("prism_"))


def _hook_functions(plugin: ModuleType | object) -> list[str]:
    return [n for n in dir(plugin) if n.startswith("prism_") and callable(getattr(plugin, n))]


class AcceleratorConformance:
    """Provide fixture `prism_plugin`: the accelerator plugin object (module) under test."""

    @pytest.fixture
    def plugin_host(self, prism_plugin: ModuleType | object) -> PluginHost:
        h = PluginHost()
        h.register(prism_plugin, "under-test")
        return h

    @pytest.fixture
    def devices(self, plugin_host: PluginHost) -> list[Device]:
        return plugin_host.devices()

    def test_hooks_use_spec_names(self, prism_plugin: ModuleType | object) -> None:
        unknown = set(_hook_functions(prism_plugin)) - SPEC_NAMES
        assert not unknown, f"functions named like hooks but matching no spec: {sorted(unknown)}"

    def test_probe_gives_devices_or_a_reason(self, plugin_host: PluginHost) -> None:
        (probe,) = plugin_host.probes()
        if probe.status == "unavailable":
            assert probe.unavailable is not None and probe.unavailable.reason.strip()
            assert not probe.devices
            return
        assert probe.devices, "an available vendor must report at least one device"
        ids = [d.id for d in probe.devices]
        assert len(set(ids)) == len(ids), f"device ids repeat: {ids}"
        for d in probe.devices:
            assert d.id == f"{d.vendor}:{d.index}"
            assert d.memory_total_bytes > 0, f"{d.id}: memory must be read, not zero"

    def test_timing_backend_resolves_marks(self, plugin_host: PluginHost, devices: list[Device]) -> None:
        for d in devices:
            backend = plugin_host.timing_backend(d)
            if backend is None:
                continue
            assert isinstance(backend, TimingBackend)
            start = backend.mark()
            sum(i * i for i in range(20_000))  # some work between the marks
            end = backend.mark()
            deadline = time.monotonic() + 5
            elapsed = backend.elapsed_ns(start, end)
            while elapsed is None and time.monotonic() < deadline:
                time.sleep(0.001)
                elapsed = backend.elapsed_ns(start, end)
            assert elapsed is not None and elapsed >= 0, f"{d.id}: marks never resolved"
            backend.release(start)
            backend.release(end)
            backend.close()
            backend.close()

    def test_telemetry_reads_or_says_why(self, plugin_host: PluginHost, devices: list[Device]) -> None:
        for d in devices:
            sampler = plugin_host.telemetry_sampler(d, 0.05)
            if sampler is None:
                continue
            assert isinstance(sampler, TelemetrySampler)
            time.sleep(0.05)
            sample = sampler.sample()
            assert sample.device == d.id
            fields = set(sampler.fields())
            assert fields, "a sampler must name the fields it reads"
            assert not set(sample.values) & set(sample.unreadable), "a field cannot be both read and unreadable"
            assert set(sample.values) | set(sample.unreadable) == fields, "every field is read or explained"
            assert all(math.isfinite(v) for v in sample.values.values())
            assert all(why.strip() for why in sample.unreadable.values())
            sampler.close()

    def test_fault_injectors_start_stop_restore(self, plugin_host: PluginHost) -> None:
        for name, fault in plugin_host.fault_injectors().items():
            assert isinstance(fault, FaultInjector)
            assert "." in name, f"fault names are '<plugin>.<fault>', got {name!r}"
            assert not fault.active, f"{name} must be created idle"
            onset = fault.start(0.1)
            try:
                assert fault.active
            finally:
                end = fault.stop()
            assert end >= onset
            assert not fault.active
            fault.stop()  # idempotent


class FrameworkAdapterConformance:
    """Provide fixtures `adapter` (a FrameworkAdapter whose framework is importable here) and `run_iteration`
    (a callable that runs one real engine iteration through the framework's own code)."""

    @pytest.fixture
    def installed(self, adapter: FrameworkAdapter) -> Iterator[RecordingRecorder]:
        recorder = RecordingRecorder()
        adapter.install(recorder)
        yield recorder
        adapter.uninstall()

    def test_adapter_is_typed_and_present(self, adapter: FrameworkAdapter) -> None:
        assert isinstance(adapter, FrameworkAdapter)
        result = adapter.check()
        assert not isinstance(result, Unavailable), f"framework not usable here: {result}"

    def test_iteration_reports_balanced_canonical_stages(
        self, installed: RecordingRecorder, run_iteration: Callable[[], object]
    ) -> None:
        run_iteration()
        assert installed.calls, "an installed adapter must report the iteration's stages"
        open_stages: list[str] = []
        for kind, stage in installed.calls:
            assert stage in CANONICAL_STAGES, f"{stage!r} is not a canonical stage {CANONICAL_STAGES}"
            if kind == "begin":
                open_stages.append(stage)
            else:
                assert open_stages and open_stages[-1] == stage, f"end({stage}) without a matching begin"
                open_stages.pop()
        assert not open_stages, f"stages left open: {open_stages}"

    def test_install_is_idempotent(
        self, adapter: FrameworkAdapter, installed: RecordingRecorder, run_iteration: Callable[[], object]
    ) -> None:
        run_iteration()
        once = list(installed.calls)
        installed.clear()
        adapter.install(installed)
        run_iteration()
        assert installed.calls == once, "installing twice must not double the instrumentation"

    def test_uninstall_restores(
        self, adapter: FrameworkAdapter, installed: RecordingRecorder, run_iteration: Callable[[], object]
    ) -> None:
        adapter.uninstall()
        installed.clear()
        run_iteration()
        assert installed.calls == [], "after uninstall the engine must run unobserved"
        adapter.uninstall()  # idempotent
