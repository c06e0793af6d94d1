"""Device-side stage timing on NVIDIA GPUs with CUDA driver events through cuda-python.

Events live in the device's primary context, the one PyTorch's runtime uses, so an event recorded on torch's
current stream is legal. The pool is created with that context pushed and popped again, so the creating thread's
current context is left as it was; the engine thread (torch made the primary context current there) and the
collector thread (nothing current) bind it only where no context is current. Nothing here synchronises:
completion is polled with cuEventQuery, which returns CUDA_ERROR_NOT_READY until the GPU has passed the event.

cuda-python returns `(CUresult, value...)` tuples; cuInit raises instead when the driver library is missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from prism_core.capture.event_pool import CurrentStream, EventPoolTiming, unpack
from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor, vendor_call
from prism_plugins.nvidia.probe import HINT, VENDOR


class CudaEvents:
    """The `EventApi` of CUDA driver events on one device."""

    vendor = VENDOR

    def __init__(self, driver: Any, device: Device, stream: Callable[[], int] | None = None) -> None:
        self._d = driver
        self._stream = stream or CurrentStream("cuda", "cuda_stream")
        self._not_ready = int(driver.CUresult.CUDA_ERROR_NOT_READY)
        unpack(VENDOR, driver.cuInit(0), "cuInit")
        bus = device.properties.get("pci_bus_id")
        # NVML and CUDA may number devices differently (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER): match by PCI id
        if bus:
            self._dev = unpack(VENDOR, driver.cuDeviceGetByPCIBusId(bus.encode()), "cuDeviceGetByPCIBusId")
        else:
            self._dev = unpack(VENDOR, driver.cuDeviceGet(device.index), "cuDeviceGet")
        self._ctx = unpack(VENDOR, driver.cuDevicePrimaryCtxRetain(self._dev), "cuDevicePrimaryCtxRetain")
        self._tls = threading.local()
        self._released = False

    def _bind(self) -> None:
        """Make the primary context current on this thread if no context is (once per thread)."""
        if getattr(self._tls, "bound", False):
            return
        current = unpack(VENDOR, self._d.cuCtxGetCurrent(), "cuCtxGetCurrent")
        if current is None or int(current) == 0:
            unpack(VENDOR, self._d.cuCtxSetCurrent(self._ctx), "cuCtxSetCurrent")
        self._tls.bound = True

    def create(self) -> object:
        d = self._d
        unpack(VENDOR, d.cuCtxPushCurrent(self._ctx), "cuCtxPushCurrent")
        try:
            # CU_EVENT_DEFAULT: timing enabled (CU_EVENT_DISABLE_TIMING would make cuEventElapsedTime fail)
            return unpack(VENDOR, d.cuEventCreate(int(d.CUevent_flags.CU_EVENT_DEFAULT)), "cuEventCreate")
        finally:
            d.cuCtxPopCurrent()

    def record(self, event: object) -> None:
        self._bind()
        (err,) = self._d.cuEventRecord(event, self._stream())
        if err:
            unpack(VENDOR, (err,), "cuEventRecord")

    def done(self, event: object) -> bool:
        self._bind()
        (err,) = self._d.cuEventQuery(event)
        if int(err) == self._not_ready:
            return False
        unpack(VENDOR, (err,), "cuEventQuery")
        return True

    def elapsed_ms(self, start: object, end: object) -> float:
        return float(unpack(VENDOR, self._d.cuEventElapsedTime(start, end), "cuEventElapsedTime"))

    def destroy(self, event: object) -> None:
        self._bind()
        unpack(VENDOR, self._d.cuEventDestroy(event), "cuEventDestroy")

    def close(self) -> None:
        if not self._released:
            self._released = True
            unpack(VENDOR, self._d.cuDevicePrimaryCtxRelease(self._dev), "cuDevicePrimaryCtxRelease")


def cuda_timing(device: Device, **pool: Any) -> EventPoolTiming | Unavailable:
    """The pooled-event timing backend for an NVIDIA device, or why it cannot be built here."""
    driver = import_vendor("cuda.bindings.driver", VENDOR, HINT)
    if isinstance(driver, Unavailable):
        return driver
    return vendor_call(VENDOR, lambda: EventPoolTiming(device, CudaEvents(driver, device), **pool))
