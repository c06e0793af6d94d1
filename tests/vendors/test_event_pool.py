"""The pooled event timing backend over CUDA's driver API, through the cuda-python fake."""

from __future__ import annotations

import sys
import threading

import pytest
from vendor_hosts import NvidiaHost

from prism_core.capture import TimingBackend
from prism_core.capture.event_pool import DROPPED, CurrentStream, DeviceTimingError, EventPoolTiming
from prism_core.models import Unavailable
from prism_core.testing import fake_torch
from prism_core.testing.device_events import CUresult
from prism_plugins.nvidia.timing import CudaEvents, cuda_timing


def pool(host: NvidiaHost, **kw: object) -> EventPoolTiming:
    backend = cuda_timing(host.device, **kw)  # type: ignore[arg-type]
    assert isinstance(backend, EventPoolTiming), backend
    return backend


def resolve(backend: EventPoolTiming, start: int, end: int, polls: int = 10) -> int | None:
    for _ in range(polls):
        if (ns := backend.elapsed_ns(start, end)) is not None:
            return ns
    return None


def test_events_are_created_up_front_with_timing_and_never_on_mark(nvidia_host: NvidiaHost) -> None:
    backend = pool(nvidia_host, initial=8, maximum=8)
    assert isinstance(backend, TimingBackend)
    driver = nvidia_host.driver
    assert driver.clock.created == 8 and set(driver.event_flags) == {0}  # CU_EVENT_DEFAULT: timing enabled
    marks = [backend.mark() for _ in range(8)]
    assert driver.clock.created == 8, "mark() must never create an event"
    assert DROPPED not in marks and len(set(marks)) == 8


def test_not_ready_is_none_then_the_time(nvidia_host: NvidiaHost) -> None:
    backend = pool(nvidia_host, initial=4)
    start = backend.mark()
    sum(range(50_000))
    end = backend.mark()
    assert backend.elapsed_ns(start, end) is None, "CUDA_ERROR_NOT_READY must read as 'not yet'"
    ns = resolve(backend, start, end)
    assert ns is not None and ns > 0
    assert nvidia_host.driver.sync_calls == [], "the backend must never synchronise"


def test_release_reuses_events_and_ignores_stale_or_double_release(nvidia_host: NvidiaHost) -> None:
    backend = pool(nvidia_host, initial=2, maximum=2)
    a, b = backend.mark(), backend.mark()
    assert backend.mark() == DROPPED and backend.stats.dropped == 1, "an exhausted pool at its cap drops and counts"
    backend.release(a)
    backend.release(a)  # double release: must not free the slot twice
    c = backend.mark()
    assert c != DROPPED and c != a, "the same slot comes back under a new generation"
    assert backend.mark() == DROPPED, "one release gave back one event, not two"
    assert backend.elapsed_ns(a, b) is None, "a mark whose event was handed out again never resolves"
    assert backend.size == 2 and nvidia_host.driver.clock.created == 2


def test_pool_grows_off_the_hot_path_up_to_its_cap(nvidia_host: NvidiaHost) -> None:
    backend = pool(nvidia_host, initial=4, maximum=10, grow_by=4, low_water=3)
    marks = [backend.mark() for _ in range(4)]
    assert backend.size == 4 and backend.free == 0
    backend.release(marks[0])  # upkeep runs here, on the collector side: free (1) < low water (3)
    assert backend.size == 8 and backend.free == 5
    more = [backend.mark() for _ in range(5)]
    backend.release(more[0])
    assert backend.size == 10, "growth stops at the cap"


def test_unreleased_marks_are_reclaimed_after_two_sweeps(nvidia_host: NvidiaHost) -> None:
    now = [0.0]
    backend = pool(nvidia_host, initial=4, maximum=4, reclaim_after_s=60, clock=lambda: now[0])
    leaked = backend.mark()  # e.g. an iteration the engine discarded: nobody will release it
    kept = backend.mark()
    for t in (61.0, 122.0):
        now[0] = t
        backend.release(backend.mark())
    assert backend.stats.reclaimed == 2 and backend.free == 4
    for _ in range(4):
        backend.mark()
    assert backend.elapsed_ns(leaked, kept) is None, "a reclaimed and reused mark never resolves"


def test_driver_errors_map_to_named_errors_and_never_reach_the_engine(nvidia_host: NvidiaHost) -> None:
    driver = nvidia_host.driver
    backend = pool(nvidia_host, initial=4)
    driver.fail["cuEventRecord"] = CUresult.CUDA_ERROR_LAUNCH_FAILED
    assert backend.mark() == DROPPED
    assert backend.stats.record_errors == 1 and "CUDA_ERROR_LAUNCH_FAILED" in (backend.stats.last_error or "")
    assert backend.free == 4, "a failed record gives its event back"
    del driver.fail["cuEventRecord"]
    start, end = backend.mark(), backend.mark()
    driver.fail["cuEventQuery"] = CUresult.CUDA_ERROR_ILLEGAL_ADDRESS
    assert backend.elapsed_ns(start, end) is None and backend.stats.query_errors == 1
    assert "CUDA_ERROR_ILLEGAL_ADDRESS" in (backend.stats.last_error or "")

    api = CudaEvents(driver, nvidia_host.device)
    with pytest.raises(DeviceTimingError) as err:
        api.done(api.create())
    assert (err.value.call, err.value.name, err.value.code) == ("cuEventQuery", "CUDA_ERROR_ILLEGAL_ADDRESS", 700)


def test_collector_thread_gets_the_context_and_close_releases_everything(nvidia_host: NvidiaHost) -> None:
    driver = nvidia_host.driver
    backend = pool(nvidia_host, initial=4)
    assert driver.cuCtxGetCurrent()[1] == 0, "creating the pool must leave this thread's context as it was"
    start, end = backend.mark(), backend.mark()  # the engine thread: no context before, bound by the backend
    got: list[int | None] = []

    def collector() -> None:
        got.append(resolve(backend, start, end))
        backend.release(start)
        backend.release(end)

    t = threading.Thread(target=collector)
    t.start()
    t.join()
    assert got[0] is not None
    backend.close()
    backend.close()
    assert driver.clock.live == 0 and driver.retained == {0: 0}
    assert backend.mark() == DROPPED and backend.elapsed_ns(start, end) is None


def test_marks_go_on_torchs_current_stream(nvidia_host: NvidiaHost, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = fake_torch("cuda", stream=0xAB)
    monkeypatch.setitem(sys.modules, "torch", torch)
    backend = pool(nvidia_host, initial=4)
    backend.mark()
    torch.current[0] = 0xCD  # the engine switched streams between stages
    backend.mark()
    assert [s for _, s in nvidia_host.driver.clock.records] == [0xAB, 0xCD]


def test_current_stream_is_the_default_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert CurrentStream("cuda")() == 0


def test_no_driver_is_a_reason_not_a_crash(nvidia_host: NvidiaHost) -> None:
    nvidia_host.driver.init_error = RuntimeError('"cuda" is an NVIDIA driver library and can only be found...')
    result = cuda_timing(nvidia_host.device)
    assert isinstance(result, Unavailable) and "driver library" in result.reason


def test_a_failed_pool_start_releases_what_it_took(nvidia_host: NvidiaHost) -> None:
    nvidia_host.driver.fail["cuEventCreate"] = CUresult.CUDA_ERROR_INVALID_VALUE
    result = cuda_timing(nvidia_host.device)
    assert isinstance(result, Unavailable) and "cuEventCreate" in result.reason
    assert nvidia_host.driver.retained == {0: 0}, "the retained primary context must be released"
