"""The plugin host: discovers plugins, and is the only code that calls hooks.

Everything else asks a `PluginHost` typed questions (`devices()`, `timing_backend(device)`, ...). Plugins come
from the entry-point group `prism`, built-ins included; third-party plugins are registered first and the
built-ins last, so under pluggy's last-registered-first order a built-in answers a firstresult hook unless a
third-party implementation says `tryfirst=True`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any, cast

import pluggy

from prism_core import hookspecs
from prism_core.capture import FrameworkAdapter, TelemetrySampler, TimingBackend
from prism_core.detect import AlertSink
from prism_core.errors import UsageError
from prism_core.export import Exporter, ExporterFactory, ExportSpec
from prism_core.faults import FaultInjector
from prism_core.memory import VmmBackend
from prism_core.models import Device, PluginInfo, Unavailable, VendorProbe
from prism_core.schedule import AdmissionPolicy, PlacementPolicy
from prism_core.settings import Settings

log = logging.getLogger("prism.plugins")

GROUP = "prism"
BUILTIN_DISTRIBUTION = "prism-xpu"


@dataclass(frozen=True, slots=True)
class _Origin:
    distribution: str | None
    version: str | None
    builtin: bool


class PluginHost:
    """A plugin manager with Prism's loading rules and typed accessors for every hook."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._origins: dict[str, _Origin] = {}
        self._failed: dict[str, tuple[_Origin, str]] = {}
        self._probes: list[VendorProbe] | None = None
        self._lock = threading.Lock()
        if self.settings.trace:
            self.pm.trace.root.setwriter(log.debug)
            self.pm.enable_tracing()

    # Loading --------------------------------------------------------------------------------------------

    def load_entry_points(self, eps: Iterable[EntryPoint] | None = None) -> None:
        """Register the plugins of the `prism` entry-point group under the allow/deny/autoload settings."""
        found = list(entry_points(group=GROUP) if eps is None else eps)
        known = {ep.name for ep in found}
        for var, names in (("PRISM_PLUGINS", self.settings.allow), ("PRISM_DISABLE_PLUGINS", self.settings.deny)):
            unknown = sorted((names or frozenset()) - known)
            if unknown:
                raise UsageError(
                    f"{var} names unknown plugin(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
                )

        def is_builtin(ep: EntryPoint) -> bool:
            return ep.dist is not None and ep.dist.name == BUILTIN_DISTRIBUTION

        # Third-party first, built-ins last: see the module docstring.
        for ep in sorted(found, key=is_builtin):
            if not (is_builtin(ep) or self.settings.autoload):
                continue
            if self.settings.allow is not None and ep.name not in self.settings.allow:
                continue
            if ep.name in self.settings.deny or self.pm.has_plugin(ep.name):
                continue
            origin = _Origin(ep.dist.name if ep.dist else None, ep.dist.version if ep.dist else None, is_builtin(ep))
            try:
                module = ep.load()
            except Exception as exc:  # a broken third-party plugin must not take the host down
                self._failed[ep.name] = (origin, f"import failed: {type(exc).__name__}: {exc}")
                log.warning("plugin %s failed to load: %s", ep.name, exc)
                continue
            self.register(module, ep.name, origin=origin)

    def register(self, plugin: ModuleType | object, name: str, *, origin: _Origin | None = None) -> None:
        """Register a plugin object (tests and embedders use this directly)."""
        self.pm.register(plugin, name=name)
        self._origins[name] = origin or _Origin(None, None, False)
        self._probes = None

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._origins.pop(name, None)
        self._probes = None

    # Accelerators ---------------------------------------------------------------------------------------

    def probes(self) -> list[VendorProbe]:
        """Ask every accelerator plugin for its devices, once; a probe that raises is reported, not raised."""
        with self._lock:
            if self._probes is None:
                self._probes = [p for impl in self.pm.hook.prism_xpu_probe.get_hookimpls() if (p := _probe(impl))]
            return list(self._probes)

    def devices(self) -> list[Device]:
        return [d for p in self.probes() for d in p.devices]

    def device(self, device_id: str) -> Device:
        for d in self.devices():
            if d.id == device_id:
                return d
        ids = ", ".join(d.id for d in self.devices()) or "none"
        raise UsageError(f"no device {device_id!r} (devices here: {ids}; see `prism devices`)")

    def timing_backend(self, device: Device) -> TimingBackend | None:
        result: TimingBackend | None = self.pm.hook.prism_timing_backend(device=device)
        return result

    def telemetry_sampler(self, device: Device, interval_s: float = 1.0) -> TelemetrySampler | None:
        result: TelemetrySampler | None = self.pm.hook.prism_telemetry_sampler(device=device, interval_s=interval_s)
        return result

    def vmm_backend(self, device: Device) -> VmmBackend | None:
        result: VmmBackend | None = self.pm.hook.prism_vmm_backend(device=device)
        return result

    def fault_injectors(self) -> dict[str, FaultInjector]:
        return _by_name(self.pm.hook.prism_fault_injectors(), "fault injector")

    # Frameworks, policies, outputs ----------------------------------------------------------------------

    def framework_adapters(self) -> list[FrameworkAdapter]:
        return [a for group in self.pm.hook.prism_framework_adapters() for a in group]

    def placement_policies(self) -> dict[str, PlacementPolicy]:
        return _by_name(self.pm.hook.prism_placement_policies(), "placement policy")

    def admission_policies(self) -> dict[str, AdmissionPolicy]:
        return _by_name(self.pm.hook.prism_admission_policies(), "admission policy")

    def alert_sinks(self) -> dict[str, AlertSink]:
        return _by_name(self.pm.hook.prism_alert_sinks(), "alert sink")

    def exporter_schemes(self) -> list[str]:
        return sorted({s for group in self.pm.hook.prism_exporters() for f in group for s in f.schemes})

    def exporter(self, spec: str | ExportSpec) -> Exporter:
        """Build the exporter for a spec string; UsageError names the known schemes when none matches."""
        parsed = spec if isinstance(spec, ExportSpec) else ExportSpec.parse(spec)
        factories: list[ExporterFactory] = [f for group in self.pm.hook.prism_exporters() for f in group]
        for factory in factories:
            if parsed.scheme in factory.schemes:
                return factory.create(parsed)
        raise UsageError(f"unknown export scheme {parsed.scheme!r} (known: {', '.join(self.exporter_schemes())})")

    # Introspection --------------------------------------------------------------------------------------

    def plugin_infos(self) -> list[PluginInfo]:
        by_plugin = {p.plugin: p for p in self.probes()}
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            probe = by_plugin.get(name)
            unavailable = probe.unavailable if probe else None
            hooks = sorted(hc.name for hc in self.pm.get_hookcallers(plugin) or [])
            status = "unavailable" if unavailable else "available"
            infos.append(_info(name, self._origins.get(name), hooks, status, str(unavailable) if unavailable else None))
        infos += [_info(name, origin, [], "failed", reason) for name, (origin, reason) in self._failed.items()]
        return sorted(infos, key=lambda i: (not i.builtin, i.name))


def _info(name: str, origin: _Origin | None, hooks: list[str], status: str, reason: str | None) -> PluginInfo:
    o = origin or _Origin(None, None, False)
    return PluginInfo.model_validate(
        {
            "name": name,
            "distribution": o.distribution,
            "version": o.version,
            "builtin": o.builtin,
            "hooks": hooks,
            "status": status,
            "reason": reason,
        }
    )


def _probe(impl: pluggy.HookImpl) -> VendorProbe | None:
    name = impl.plugin_name
    try:
        result = cast(list[Device] | Unavailable | None, impl.function())
    except Exception as exc:  # a probe must never take `prism devices` down; report it as the reason
        unavailable = Unavailable(vendor=name, reason=f"probe raised: {exc}", error_type=type(exc).__name__)
        return VendorProbe(plugin=name, vendor=name, status="unavailable", unavailable=unavailable)
    if result is None:
        return None
    if isinstance(result, Unavailable):
        return VendorProbe(plugin=name, vendor=result.vendor, status="unavailable", unavailable=result)
    if not result:
        unavailable = Unavailable(vendor=name, reason="the vendor library loaded but reports no devices")
        return VendorProbe(plugin=name, vendor=name, status="unavailable", unavailable=unavailable)
    return VendorProbe(plugin=name, vendor=result[0].vendor, status="available", devices=list(result))


def _by_name(groups: list[list[Any]], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group in groups:
        for obj in group:
            if obj.name in out:
                raise UsageError(f"two plugins register a {what} named {obj.name!r}")
            out[obj.name] = obj
    return out


_host: PluginHost | None = None
_host_lock = threading.Lock()


def host() -> PluginHost:
    """The process-wide plugin host, built on first use from PRISM_* settings (idempotent, thread-safe)."""
    global _host
    with _host_lock:
        if _host is None:
            h = PluginHost(Settings.from_env())
            h.load_entry_points()
            _host = h
        return _host


def reset() -> None:
    """Forget the process-wide host, so the next `host()` reloads (tests, and `prism --plugins ...`)."""
    global _host
    with _host_lock:
        _host = None
