"""Device-side stage timing on AMD GPUs with HIP events through hip-python (`from hip import hip`).

hip-python returns `(hipError_t, value...)` tuples like cuda-python. HIP has no explicit contexts: an event
belongs to the device current when it is created, so creation switches to the plugin's device and back, leaving
the calling thread's device as it was. Completion is polled with hipEventQuery (hipErrorNotReady until the GPU
has passed the event); nothing synchronises. ROCm builds of torch expose the HIP stream as
`torch.cuda.current_stream().cuda_stream`.

The device index is pyrsmi's; with HIP_VISIBLE_DEVICES / ROCR_VISIBLE_DEVICES set, HIP may number devices
differently (not yet matched by PCI id: implemented from the HIP documentation, not run on an AMD GPU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prism_core.capture.event_pool import CurrentStream, EventPoolTiming, unpack
from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor, vendor_call
from prism_plugins.amd.probe import VENDOR

HIP_HINT = "install hip-python for your ROCm version (pip install hip-python)"


class HipEvents:
    """The `EventApi` of HIP events on one device."""

    vendor = VENDOR

    def __init__(self, hip: Any, device: Device, stream: Callable[[], int] | None = None) -> None:
        self._hip = hip
        self._index = device.index
        self._stream = stream or CurrentStream("cuda", "cuda_stream")
        self._not_ready = int(hip.hipError_t.hipErrorNotReady)

    def create(self) -> object:
        hip = self._hip
        previous = unpack(VENDOR, hip.hipGetDevice(), "hipGetDevice")
        unpack(VENDOR, hip.hipSetDevice(self._index), "hipSetDevice")
        try:
            return unpack(VENDOR, hip.hipEventCreate(), "hipEventCreate")  # default flags: timing enabled
        finally:
            hip.hipSetDevice(previous)

    def record(self, event: object) -> None:
        (err,) = self._hip.hipEventRecord(event, self._stream())
        if err:
            unpack(VENDOR, (err,), "hipEventRecord")

    def done(self, event: object) -> bool:
        (err,) = self._hip.hipEventQuery(event)
        if int(err) == self._not_ready:
            return False
        unpack(VENDOR, (err,), "hipEventQuery")
        return True

    def elapsed_ms(self, start: object, end: object) -> float:
        return float(unpack(VENDOR, self._hip.hipEventElapsedTime(start, end), "hipEventElapsedTime"))

    def destroy(self, event: object) -> None:
        unpack(VENDOR, self._hip.hipEventDestroy(event), "hipEventDestroy")

    def close(self) -> None:
        return None


def hip_timing(device: Device, **pool: Any) -> EventPoolTiming | Unavailable:
    """The pooled-event timing backend for an AMD device, or why it cannot be built here."""
    hip = import_vendor("hip.hip", VENDOR, HIP_HINT)
    if isinstance(hip, Unavailable):
        return hip
    return vendor_call(VENDOR, lambda: EventPoolTiming(device, HipEvents(hip, device), **pool))
