"""HIP (hip-python) and ACL (pyACL) event timing through their fakes: device handling and error mapping."""

from __future__ import annotations

import threading

from vendor_hosts import AmdHost, AscendHost

from prism_core.capture.event_pool import DROPPED, EventPoolTiming
from prism_core.models import Device
from prism_core.testing import FakeHip
from prism_core.testing.device_events import hipError_t
from prism_plugins.amd.timing import HipEvents, hip_timing
from prism_plugins.ascend.timing import acl_timing


def settle(backend: EventPoolTiming, start: int, end: int) -> int | None:
    for _ in range(5):
        if (ns := backend.elapsed_ns(start, end)) is not None:
            return ns
    return None


def test_hip_events_are_made_on_the_plugin_device_and_leave_the_thread_device_alone() -> None:
    hip = FakeHip(device_count=2)
    hip.hipSetDevice(1)  # the engine works on device 1 in this thread
    device0 = Device(id="amd:0", vendor="amd", index=0, name="MI300X", memory_total_bytes=1)
    backend = EventPoolTiming(device0, HipEvents(hip, device0), initial=4)
    assert set(hip.event_device.values()) == {0}
    assert hip.hipGetDevice() == (hipError_t.hipSuccess, 1)
    start, end = backend.mark(), backend.mark()
    assert backend.elapsed_ns(start, end) is None  # hipErrorNotReady
    assert settle(backend, start, end) is not None and hip.sync_calls == []
    backend.close()
    assert hip.clock.live == 0


def test_hip_errors_are_named(amd_host: AmdHost) -> None:
    backend = hip_timing(amd_host.device, initial=2)
    assert isinstance(backend, EventPoolTiming)
    amd_host.hip.fail["hipEventRecord"] = hipError_t.hipErrorLaunchFailure
    assert backend.mark() == DROPPED
    assert "hipEventRecord failed with hipErrorLaunchFailure (719)" in (backend.stats.last_error or "")


def test_acl_events_resolve_from_another_thread_and_close_resets_the_device(ascend_host: AscendHost) -> None:
    acl = ascend_host.acl
    backend = acl_timing(ascend_host.device, initial=4)
    assert isinstance(backend, EventPoolTiming), backend
    start, end = backend.mark(), backend.mark()
    got: list[int | None] = []
    t = threading.Thread(target=lambda: got.append(settle(backend, start, end)))
    t.start()
    t.join()
    assert got[0] is not None and acl.sync_calls == []
    backend.close()
    assert acl.clock.live == 0 and acl.calls[-1] == "reset_device(0)"


def test_acl_error_codes_become_reasons(ascend_host: AscendHost) -> None:
    backend = acl_timing(ascend_host.device, initial=2)
    assert isinstance(backend, EventPoolTiming)
    ascend_host.acl.fail["query_event_status"] = 507011
    start, end = backend.mark(), backend.mark()
    assert backend.elapsed_ns(start, end) is None and backend.stats.query_errors == 1
    assert "aclrtQueryEventStatus failed with ACL error 507011" in (backend.stats.last_error or "")
