"""The plugin contract: every hook Prism calls, and what an implementation must return.

This module is the single source of truth; docs/plugins.md mirrors each signature (a test keeps them equal).
Rules for every hook:
- Arguments are keyword-only and an implementation may accept any subset of them.
- Hooks configure, objects run: a hook returns an object implementing an interface from prism_core; nothing
  on a per-token, per-stage or per-kernel path calls a hook.
- A hook must not raise because a vendor library is missing: return `Unavailable` (probe) or None.
- Only prism_core/plugins.py calls hooks; everything else uses its typed functions.

Implement a hook by decorating a function named exactly as the spec with `prism_core.hookimpl`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from prism_core.capture import FrameworkAdapter, TelemetrySampler, TimingBackend
    from prism_core.detect import AlertSink
    from prism_core.export import ExporterFactory
    from prism_core.faults import FaultInjector
    from prism_core.memory import VmmBackend
    from prism_core.models import Device, Unavailable
    from prism_core.schedule import AdmissionPolicy, PlacementPolicy

PROJECT = "prism"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# Accelerators ---------------------------------------------------------------------------------------------


@hookspec
def prism_xpu_probe() -> list[Device] | Unavailable | None:
    """Find the devices of the accelerator this plugin supports.

    Called by: `prism devices`, `prism plugins`, and every component that needs a device, once per process
    (results are cached by prism_core.plugins).
    Returns: the devices found (each with a stable id '<vendor>:<index>'); or `Unavailable` with the vendor's
    own reason when its library, driver or permission is missing (never raise, never invent a device, never
    report zero devices as success); or None from plugins that are not accelerator plugins.
    Not firstresult: every accelerator plugin answers.
    """


@hookspec(firstresult=True)
def prism_timing_backend(device: Device) -> TimingBackend | None:
    """Build the device-side stage timer for `device`.

    Called by: the capture collector when it starts, once per device it records on.
    Arguments: `device`, one of the devices this or another plugin's probe returned.
    Returns: a `prism_core.capture.TimingBackend` for devices of this plugin's vendor, else None.
    firstresult: the first non-None answer wins.
    """


@hookspec(firstresult=True)
def prism_telemetry_sampler(device: Device, interval_s: float) -> TelemetrySampler | None:
    """Build the resource telemetry sampler for `device`.

    Called by: the telemetry thread when capture starts, and `prism devices --telemetry`.
    Arguments: `device`; `interval_s`, the sampling interval the caller will use (a sampler may use it to size
    rate windows).
    Returns: a `prism_core.capture.TelemetrySampler` for this plugin's devices, else None. firstresult.
    """


@hookspec(firstresult=True)
def prism_vmm_backend(device: Device) -> VmmBackend | None:
    """Build the virtual-memory backend the elastic KV pool maps pages with on `device`.

    Called by: the elastic KV pool and the memory broker, once per device per process.
    Returns: a `prism_core.memory.VmmBackend` for this plugin's devices, else None. firstresult.
    """


@hookspec
def prism_fault_injectors() -> list[FaultInjector]:
    """Contribute fault injectors to the anomaly simulation toolkit.

    Called by: `prism faults list|run`, `prism dataset make`, `prism demo`.
    Returns: `prism_core.faults.FaultInjector` objects, created idle (nothing runs until `start`). Names are
    '<plugin>.<fault>' and unique across plugins. A plugin whose vendor is absent returns [].
    """


# Serving frameworks ---------------------------------------------------------------------------------------


@hookspec
def prism_framework_adapters() -> list[FrameworkAdapter]:
    """Contribute adapters that instrument serving frameworks inside the current process.

    Called by: the `prism run` bootstrap and the vLLM general plugin, once per process before the engine is
    built. Each adapter's `check()` says whether its framework is here; only those are installed.
    Returns: `prism_core.capture.FrameworkAdapter` objects (cheap to create: no framework import).
    """


# Scheduling -----------------------------------------------------------------------------------------------


@hookspec
def prism_placement_policies() -> list[PlacementPolicy]:
    """Contribute global placement policies (which models live on which devices).

    Called by: `prism simulate` and the serving controller, to resolve a policy name.
    Returns: `prism_core.schedule.PlacementPolicy` objects with unique `name`s.
    """


@hookspec
def prism_admission_policies() -> list[AdmissionPolicy]:
    """Contribute per-device admission policies (which queued request runs next).

    Called by: `prism simulate` and the serving controller, to resolve a policy name.
    Returns: `prism_core.schedule.AdmissionPolicy` objects with unique `name`s.
    """


# Outputs --------------------------------------------------------------------------------------------------


@hookspec
def prism_exporters() -> list[ExporterFactory]:
    """Contribute exporters for record export specs ('jsonl:PATH', 'otlp+grpc://HOST:PORT', ...).

    Called by: `prism run --export SPEC` and the capture collector, once per spec, at start.
    Returns: `prism_core.export.ExporterFactory` objects, each naming the spec schemes it builds. Built-in
    plugins are registered last and so answer first; a third-party factory overrides a built-in scheme with
    `@hookimpl(tryfirst=True)`.
    """


@hookspec
def prism_alert_sinks() -> list[AlertSink]:
    """Contribute destinations for alerts (log, webhook, OTel events, callbacks).

    Called by: the detector when it starts.
    Returns: `prism_core.detect.AlertSink` objects with unique `name`s; `send` runs on the collector thread
    and must not block (queue slow work).
    """
