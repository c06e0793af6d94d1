"""Device-side stage timing on Ascend NPUs with ACL events through pyACL (`import acl`).

Calls (pyACL reference, CANN 8.x): `event, ret = acl.rt.create_event()`, `ret = acl.rt.record_event(event,
stream)`, `status, ret = acl.rt.query_event_status(event)` (ACL_EVENT_RECORDED_STATUS_COMPLETE = 1; documented to
work from a thread other than the recording one, unlike the deprecated aclrtQueryEvent), `ms, ret =
acl.rt.event_elapsed_time(start, end)`, `ret = acl.rt.destroy_event(event)`. Nothing synchronises.

The backend sets the device once (`acl.rt.set_device`, reference-counted by ACL, undone by `reset_device` in
close), keeps that thread's context, and makes it current on any other thread that uses the events. torch_npu
exposes the engine's stream as `torch.npu.current_stream().npu_stream`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from prism_core.capture.event_pool import CurrentStream, DeviceTimingError, EventPoolTiming
from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor, vendor_call
from prism_plugins.ascend.probe import HINT, VENDOR, AclError
from prism_plugins.ascend.runtime import ensure_init, ok, value

EVENT_COMPLETE = 1  # ACL_EVENT_RECORDED_STATUS_COMPLETE


def _timing_error(call: str, ret: int) -> DeviceTimingError:
    return DeviceTimingError(VENDOR, call, ret, f"ACL error {ret}")


class AclEvents:
    """The `EventApi` of ACL events on one NPU."""

    vendor = VENDOR

    def __init__(self, acl: Any, device: Device, stream: Callable[[], int] | None = None) -> None:
        self._acl = acl
        self._index = device.index
        self._stream = stream or CurrentStream("npu", "npu_stream")
        ensure_init(acl)
        ok("aclrtSetDevice", acl.rt.set_device(device.index))
        self._device_set = True
        try:
            self._ctx = value("aclrtGetContext", acl.rt.get_context())
        except AclError:
            self.close()
            raise
        self._tls = threading.local()
        self._tls.bound = True  # set_device made the context current on this thread

    def _bind(self) -> None:
        if not getattr(self._tls, "bound", False):
            ret = self._acl.rt.set_context(self._ctx)
            if ret:
                raise _timing_error("aclrtSetContext", ret)
            self._tls.bound = True

    def create(self) -> object:
        self._bind()
        event, ret = self._acl.rt.create_event()
        if ret:
            raise _timing_error("aclrtCreateEvent", ret)
        return event

    def record(self, event: object) -> None:
        self._bind()
        ret = self._acl.rt.record_event(event, self._stream())
        if ret:
            raise _timing_error("aclrtRecordEvent", ret)

    def done(self, event: object) -> bool:
        self._bind()
        status, ret = self._acl.rt.query_event_status(event)
        if ret:
            raise _timing_error("aclrtQueryEventStatus", ret)
        return bool(status == EVENT_COMPLETE)

    def elapsed_ms(self, start: object, end: object) -> float:
        ms, ret = self._acl.rt.event_elapsed_time(start, end)
        if ret:
            raise _timing_error("aclrtEventElapsedTime", ret)
        return float(ms)

    def destroy(self, event: object) -> None:
        self._bind()
        ret = self._acl.rt.destroy_event(event)
        if ret:
            raise _timing_error("aclrtDestroyEvent", ret)

    def close(self) -> None:
        if self._device_set:
            self._device_set = False
            self._acl.rt.reset_device(self._index)


def acl_timing(device: Device, **pool: Any) -> EventPoolTiming | Unavailable:
    """The pooled-event timing backend for an Ascend NPU, or why it cannot be built here."""
    acl = import_vendor("acl", VENDOR, HINT)
    if isinstance(acl, Unavailable):
        return acl
    return vendor_call(VENDOR, lambda: EventPoolTiming(device, AclEvents(acl, device), **pool))
