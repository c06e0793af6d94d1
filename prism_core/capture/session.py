"""A capture session: ring, recorder, collector and exporters for one process, and the adapters it installed.

`CaptureSession` is what an embedder uses directly; the `prism run` bootstrap keeps one per process.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from prism_core.capture.adapters import FrameworkAdapter
from prism_core.capture.buffer import DEFAULT_CAPACITY, EventRing
from prism_core.capture.collector import BatchConsumer, Collector
from prism_core.capture.deep import DEFAULT_DEEP_BATCHES, OperatorCapture, torch_profiler_missing
from prism_core.capture.recorder import RingRecorder
from prism_core.capture.stages import StageRecorder
from prism_core.capture.timing import TimingBackend
from prism_core.errors import UsageError
from prism_core.export import Exporter, ExportSpec
from prism_core.faults.stage_delay import DelayingRecorder
from prism_core.models import Device, Unavailable
from prism_core.plugins import PluginHost, host

log = logging.getLogger("prism.capture")


def pick_device(plugin_host: PluginHost, device_id: str | None = None) -> Device:
    """`device_id` (PRISM_DEVICE) if given; else the first real accelerator; else the host CPU (never a simulated
    device unless asked for)."""
    wanted = device_id or os.environ.get("PRISM_DEVICE")
    if wanted:
        return plugin_host.device(wanted)
    devices = plugin_host.devices()
    if not devices:
        raise UsageError("no device to record on: no accelerator plugin reports one (see `prism devices`)")
    real = [d for d in devices if not d.simulated]
    return next((d for d in real if d.vendor != "cpu"), real[0] if real else devices[0])


class CaptureSession:
    """Everything capture needs in one process. `close()` flushes records out; idempotent."""

    def __init__(
        self,
        exporters: Sequence[Exporter] = (),
        *,
        plugin_host: PluginHost | None = None,
        device_id: str | None = None,
        timing: TimingBackend | None = None,
        capacity: int = DEFAULT_CAPACITY,
        interval_s: float | None = None,
        stage_faults: bool = False,
    ) -> None:
        self.host = plugin_host or host()
        if timing is None:
            device = pick_device(self.host, device_id)
            timing = self.host.timing_backend(device)
            if timing is None:
                raise UsageError(f"no plugin gives a timing backend for {device.id}")
        self.timing = timing
        self.ring = EventRing(capacity)
        ring_recorder = self.ring_recorder = RingRecorder(self.ring, timing)
        # Stage faults (cpu.stage_delay) need a recorder that can sleep inside a stage; it costs one more call per
        # event, so it is only put in front when asked for (`prism dataset make`, `prism demo`, PRISM_STAGE_FAULTS).
        self.recorder: StageRecorder = DelayingRecorder(ring_recorder) if stage_faults else ring_recorder
        self.collector = Collector(self.ring, timing, exporters, interval_s=interval_s)
        self.installed: list[FrameworkAdapter] = []
        self.skipped: dict[str, Unavailable] = {}
        self.collector.start()

    @classmethod
    def from_specs(cls, specs: Sequence[str | ExportSpec], **kwargs: object) -> CaptureSession:
        plugin_host = kwargs.pop("plugin_host", None) or host()
        assert isinstance(plugin_host, PluginHost)
        exporters = [plugin_host.exporter(s) for s in specs]
        return cls(exporters, plugin_host=plugin_host, **kwargs)  # type: ignore[arg-type]

    def operator_capture(self, batches: int = DEFAULT_DEEP_BATCHES) -> OperatorCapture | None:
        """Deep capture (torch.profiler) of `batches` iterations at a time on this session's recorder; None, saying
        why, where torch has none."""
        missing = torch_profiler_missing()
        if missing is not None:
            log.warning("deep capture off: %s", missing.reason)
            return None
        gpu = self.timing.device.vendor in ("nvidia", "amd")
        return OperatorCapture(self.ring_recorder, batches=batches, gpu=gpu)

    def add_consumer(self, fn: BatchConsumer) -> None:
        self.collector.add_consumer(fn)

    def install(self, adapter: FrameworkAdapter) -> Unavailable | None:
        """Install one adapter if its framework is usable here; else say why (and leave the engine alone)."""
        if adapter in self.installed:
            return None
        reason = adapter.check()
        if reason is not None:
            self.skipped[adapter.name] = reason
            return reason
        adapter.install(self.recorder)
        self.installed.append(adapter)
        return None

    def install_all(self, module: str | None = None) -> dict[str, Unavailable]:
        """Install every plugin adapter (or those for top-level import `module`); returns the ones skipped."""
        skipped = {}
        for adapter in self.host.framework_adapters():
            if module is not None and getattr(adapter, "module", None) != module:
                continue
            reason = self.install(adapter)
            if reason is not None:
                skipped[adapter.name] = reason
        return skipped

    def uninstall(self, adapter: FrameworkAdapter) -> None:
        """Put one installed adapter's engine back as it was; capture of other adapters goes on."""
        if adapter in self.installed:
            adapter.uninstall()
            self.installed.remove(adapter)

    def flush(self) -> None:
        self.collector.flush(final=False)

    def close(self) -> None:
        for adapter in reversed(self.installed):
            try:
                adapter.uninstall()
            except Exception as exc:  # at exit, a failed restore must not hide the records
                sys.stderr.write(f"prism: {adapter.name} uninstall failed: {exc}\n")
        self.installed.clear()
        self.collector.close()
        self.timing.close()
