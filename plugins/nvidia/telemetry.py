"""NVIDIA telemetry through NVML (nvidia-ml-py, `import pynvml`), converted to SI units.

NVML units (NVML API reference, https://docs.nvidia.com/deploy/nvml-api/): utilisation in percent, clocks in
MHz, power in mW, temperature in degrees C, PCIe throughput in KB/s (taken as KiB/s), NVLink throughput field
values as cumulative KiB, ECC counts since the driver loaded. A call that fails (NVMLError_NotSupported on a card
without the feature, NVMLError_NoPermission in a container) costs its fields only and says why.

XID errors come from an NVML event set polled without waiting at each sample; where registering for XID events
is refused (common without root), the field is unreadable with NVML's reason.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from prism_core.capture.readings import CounterRates, Readings, Unreadable
from prism_core.export import names
from prism_core.models import Device, TelemetrySample, Unavailable
from prism_core.vendor import import_vendor, vendor_call
from prism_plugins.nvidia.probe import HINT, VENDOR

log = logging.getLogger("prism.nvidia")

PERCENT = 0.01
MHZ = 1e6
MILLIWATT = 1e-3
KIB = 1024

FIELDS = (
    names.HW_GPU_UTILIZATION,
    names.PRISM_GPU_MEMORY_BUSY,
    names.HW_GPU_MEMORY_USAGE,
    names.HW_GPU_MEMORY_LIMIT,
    names.PRISM_GPU_CLOCK_SM,
    names.PRISM_GPU_CLOCK_MEMORY,
    names.PRISM_GPU_CLOCK_EVENT_REASONS,
    names.HW_POWER,
    names.HW_TEMPERATURE,
    names.PRISM_GPU_PCIE_TX,
    names.PRISM_GPU_PCIE_RX,
    names.PRISM_GPU_LINK_TX,
    names.PRISM_GPU_LINK_RX,
    names.PRISM_GPU_ECC_CORRECTED,
    names.PRISM_GPU_ECC_UNCORRECTED,
    names.PRISM_GPU_XID_ERRORS,
)


def device_handle(nvml: Any, device: Device) -> Any:
    """NVML handle by PCI bus id (stable across CUDA_VISIBLE_DEVICES), else by index."""
    bus = device.properties.get("pci_bus_id")
    if bus:
        return nvml.nvmlDeviceGetHandleByPciBusId(bus.encode())
    return nvml.nvmlDeviceGetHandleByIndex(device.index)


class NvmlTelemetry:
    """Samples one NVIDIA GPU; `interval_s` is the caller's sampling period (rates are over the real time)."""

    def __init__(
        self, nvml: Any, device: Device, interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.device = device
        self.interval_s = interval_s
        self._nvml = nvml
        nvml.nvmlInit()
        self._closed = False
        try:
            self._h = device_handle(nvml, device)
            self._links, self._links_reason = self._active_links()
            self._rates = CounterRates(clock)
            if self._links:
                with contextlib.suppress(nvml.NVMLError, Unreadable):  # the first sample reports it
                    self._rates.prime(self._nvlink_kib())
            self._xid_set: Any = None
            self._xid_reason = ""
            self._xids = 0
            self._register_xids()
        except BaseException:
            self.close()
            raise

    def fields(self) -> tuple[str, ...]:
        return FIELDS

    def sample(self) -> TelemetrySample:
        nvml, h = self._nvml, self._h
        r = Readings(errors=(nvml.NVMLError,))
        r.read_all(
            (names.HW_GPU_UTILIZATION, names.PRISM_GPU_MEMORY_BUSY),
            lambda: _pair(nvml.nvmlDeviceGetUtilizationRates(h), "gpu", "memory", PERCENT),
        )
        r.read_all(
            (names.HW_GPU_MEMORY_USAGE, names.HW_GPU_MEMORY_LIMIT),
            lambda: _pair(nvml.nvmlDeviceGetMemoryInfo(h), "used", "total", 1),
        )
        r.read(names.PRISM_GPU_CLOCK_SM, lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM) * MHZ)
        r.read(names.PRISM_GPU_CLOCK_MEMORY, lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM) * MHZ)
        r.read(names.PRISM_GPU_CLOCK_EVENT_REASONS, self._clock_event_reasons)
        r.read(names.HW_POWER, lambda: nvml.nvmlDeviceGetPowerUsage(h) * MILLIWATT)
        r.read(names.HW_TEMPERATURE, lambda: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))
        r.read(names.PRISM_GPU_PCIE_TX, lambda: nvml.nvmlDeviceGetPcieThroughput(h, nvml.NVML_PCIE_UTIL_TX_BYTES) * KIB)
        r.read(names.PRISM_GPU_PCIE_RX, lambda: nvml.nvmlDeviceGetPcieThroughput(h, nvml.NVML_PCIE_UTIL_RX_BYTES) * KIB)
        r.read_all((names.PRISM_GPU_LINK_TX, names.PRISM_GPU_LINK_RX), self._nvlink_rates)
        for name, kind in (
            (names.PRISM_GPU_ECC_CORRECTED, nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED),
            (names.PRISM_GPU_ECC_UNCORRECTED, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
        ):
            r.read(name, lambda kind=kind: nvml.nvmlDeviceGetTotalEccErrors(h, kind, nvml.NVML_VOLATILE_ECC))
        r.read(names.PRISM_GPU_XID_ERRORS, self._drain_xids)
        return r.sample(self.device.id)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if getattr(self, "_xid_set", None) is not None:
            try:
                self._nvml.nvmlEventSetFree(self._xid_set)
            except self._nvml.NVMLError as exc:
                log.debug("nvmlEventSetFree: %s", exc)
            self._xid_set = None
        self._nvml.nvmlShutdown()

    # Fields that need more than one call ------------------------------------------------------------------

    def _clock_event_reasons(self) -> float:
        nvml = self._nvml
        # renamed from ...ClocksThrottleReasons in newer NVML; the old name remains for older drivers
        fn = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        fn = fn or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        return float(fn(self._h))

    def _active_links(self) -> tuple[list[int], str]:
        nvml = self._nvml
        links = []
        reason = "no active NVLink link on this GPU"
        for link in range(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18)):
            try:
                if nvml.nvmlDeviceGetNvLinkState(self._h, link) == nvml.NVML_FEATURE_ENABLED:
                    links.append(link)
            except nvml.NVMLError as exc:
                if not links:
                    reason = f"NVLink: {type(exc).__name__}: {exc}"
                break  # links are numbered from 0: the first one that errors ends the list
        return links, reason

    def _nvlink_kib(self) -> dict[str, float]:
        nvml = self._nvml
        ids = [(nvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, link) for link in self._links]
        ids += [(nvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, link) for link in self._links]
        totals = {"tx": 0.0, "rx": 0.0}
        for value in nvml.nvmlDeviceGetFieldValues(self._h, ids):
            if value.nvmlReturn != 0:
                where = f"field {value.fieldId} link {value.scopeId}"
                raise Unreadable(f"nvmlDeviceGetFieldValues {where}: NVML error {value.nvmlReturn}")
            key = "tx" if value.fieldId == nvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX else "rx"
            totals[key] += value.value.ullVal
        return totals

    def _nvlink_rates(self) -> tuple[float, float]:
        if not self._links:
            raise Unreadable(self._links_reason)
        rates = self._rates.rates(self._nvlink_kib())
        return rates["tx"] * KIB, rates["rx"] * KIB

    def _register_xids(self) -> None:
        nvml = self._nvml
        try:
            event_set = nvml.nvmlEventSetCreate()
        except nvml.NVMLError as exc:
            self._xid_reason = f"XID events: {type(exc).__name__}: {exc}"
            return
        try:
            nvml.nvmlDeviceRegisterEvents(self._h, nvml.nvmlEventTypeXidCriticalError, event_set)
        except nvml.NVMLError as exc:
            self._xid_reason = f"XID events: {type(exc).__name__}: {exc}"
            nvml.nvmlEventSetFree(event_set)
            return
        self._xid_set = event_set

    def _drain_xids(self) -> float:
        if self._xid_set is None:
            raise Unreadable(self._xid_reason)
        nvml = self._nvml
        while True:
            try:
                event = nvml.nvmlEventSetWait_v2(self._xid_set, 0)  # 0 ms: poll, never wait
            except nvml.NVMLError_Timeout:
                return float(self._xids)
            self._xids += 1
            log.warning("%s: XID %s reported by the driver", self.device.id, getattr(event, "eventData", "?"))


def _pair(obj: Any, a: str, b: str, scale: float) -> tuple[float, float]:
    return getattr(obj, a) * scale, getattr(obj, b) * scale


def nvml_telemetry(device: Device, interval_s: float = 1.0) -> NvmlTelemetry | Unavailable:
    nvml = import_vendor("pynvml", VENDOR, HINT)
    if isinstance(nvml, Unavailable):
        return nvml
    return vendor_call(VENDOR, lambda: NvmlTelemetry(nvml, device, interval_s))
