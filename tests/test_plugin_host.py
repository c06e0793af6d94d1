"""Plugin loading rules: entry points, built-ins last, allow/deny lists, autoload, failures, tracing."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pytest

from prism_core import hookimpl
from prism_core.errors import UsageError
from prism_core.models import Device, Unavailable
from prism_core.plugins import BUILTIN_DISTRIBUTION, PluginHost
from prism_core.settings import Settings

BUILTINS = {"cpu", "nvidia", "amd", "ascend", "export", "alerts"}


def loaded(settings: Settings, eps: list[EntryPoint] | None = None) -> PluginHost:
    h = PluginHost(settings)
    h.load_entry_points(eps)
    return h


def names(h: PluginHost) -> set[str]:
    return {name for name, _ in h.pm.list_name_plugin()}


def test_builtins_come_from_entry_points(builtin_host: PluginHost) -> None:
    assert names(builtin_host) >= BUILTINS
    infos = {i.name: i for i in builtin_host.plugin_infos()}
    assert infos["cpu"].builtin and infos["cpu"].distribution == BUILTIN_DISTRIBUTION
    assert "prism_xpu_probe" in infos["cpu"].hooks
    assert infos["cpu"].status == "available"


def test_autoload_off_skips_third_party_but_on_loads_it() -> None:
    assert "simulated" not in names(loaded(Settings(autoload=False)))
    h = loaded(Settings(autoload=True))
    assert "simulated" in names(h)
    info = next(i for i in h.plugin_infos() if i.name == "simulated")
    assert (info.distribution, info.builtin) == ("prism-example-plugin", False)
    assert all(d.simulated for d in h.devices() if d.vendor == "simulated")


def test_third_party_registered_before_builtins() -> None:
    order = [name for name, _ in loaded(Settings(autoload=True)).pm.list_name_plugin()]
    assert order.index("simulated") < min(order.index(b) for b in BUILTINS)


class _Marker:
    def __init__(self, device: Device) -> None:
        self.device = device


class _Override:
    @hookimpl
    def prism_timing_backend(self, device: Device) -> _Marker:
        return _Marker(device)


class _Eager:
    @hookimpl(tryfirst=True)
    def prism_timing_backend(self, device: Device) -> _Marker:
        return _Marker(device)


@pytest.mark.parametrize(("plugin", "wins"), [(_Override(), False), (_Eager(), True)])
def test_builtin_answers_first_unless_tryfirst(plugin: object, wins: bool) -> None:
    h = PluginHost(Settings(autoload=False))
    h.register(plugin, "third-party")  # registered before the built-ins, as entry-point loading does
    h.load_entry_points()
    cpu = h.device("cpu:0")
    assert isinstance(h.timing_backend(cpu), _Marker) is wins


def test_allow_list_loads_only_named() -> None:
    assert names(loaded(Settings(allow=frozenset({"cpu"})))) == {"cpu"}


def test_deny_list_drops_named() -> None:
    h = loaded(Settings(deny=frozenset({"nvidia", "amd"})))
    assert not {"nvidia", "amd"} & names(h)
    assert "cpu" in names(h)


@pytest.mark.parametrize("settings", [Settings(allow=frozenset({"cpuu"})), Settings(deny=frozenset({"nvida"}))])
def test_unknown_names_in_lists_are_usage_errors(settings: Settings) -> None:
    with pytest.raises(UsageError, match="unknown plugin"):
        loaded(settings)


def test_broken_plugin_is_reported_not_raised() -> None:
    eps = [*entry_points(group="prism"), EntryPoint(name="broken", value="no_such_module_for_prism", group="prism")]
    h = loaded(Settings(autoload=True), eps)
    broken = next(i for i in h.plugin_infos() if i.name == "broken")
    assert broken.status == "failed" and "ModuleNotFoundError" in (broken.reason or "")
    assert "cpu" in names(h)


class _RaisingProbe:
    @hookimpl
    def prism_xpu_probe(self) -> list[Device]:
        raise RuntimeError("driver exploded")


class _EmptyProbe:
    @hookimpl
    def prism_xpu_probe(self) -> list[Device]:
        return []


def test_probe_failures_become_unavailable() -> None:
    h = PluginHost()
    h.register(_RaisingProbe(), "raising")
    h.register(_EmptyProbe(), "empty")
    by_plugin = {p.plugin: p for p in h.probes()}
    raising = by_plugin["raising"].unavailable
    assert isinstance(raising, Unavailable) and raising.error_type == "RuntimeError"
    assert "driver exploded" in raising.reason
    empty = by_plugin["empty"].unavailable
    assert empty is not None and "no devices" in empty.reason
    assert h.devices() == []


def test_unknown_device_id_names_the_devices_there(builtin_host: PluginHost) -> None:
    with pytest.raises(UsageError, match="cpu:0"):
        builtin_host.device("nvidia:7")


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


class _Policies:
    def __init__(self, *names: str) -> None:
        self._names = names

    @hookimpl
    def prism_placement_policies(self) -> list[Any]:
        return [_Named(n) for n in self._names]

    @hookimpl
    def prism_admission_policies(self) -> list[Any]:
        return [_Named(n) for n in self._names]

    @hookimpl
    def prism_framework_adapters(self) -> list[Any]:
        return [_Named(n) for n in self._names]


def test_collecting_hooks_merge_plugins_and_reject_duplicate_names() -> None:
    h = PluginHost()
    h.register(_Policies("a", "b"), "one")
    h.register(_Policies("c"), "two")
    assert set(h.placement_policies()) == {"a", "b", "c"}
    assert set(h.admission_policies()) == {"a", "b", "c"}
    assert sorted(a.name for a in h.framework_adapters()) == ["a", "b", "c"]
    h.register(_Policies("a"), "three")
    with pytest.raises(UsageError, match="two plugins register a placement policy named 'a'"):
        h.placement_policies()


def test_trace_logs_hook_calls(caplog: pytest.LogCaptureFixture) -> None:
    h = loaded(Settings(trace=True, allow=frozenset({"cpu"})))
    with caplog.at_level(logging.DEBUG, logger="prism.plugins"):
        h.timing_backend(h.device("cpu:0"))
    assert any("prism_timing_backend" in r.getMessage() for r in caplog.records)
