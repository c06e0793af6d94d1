"""Fakes of the vendor event APIs: cuda-python's driver module, hip-python's `hip` module, and a torch stub.

`FakeCudaEventDriver` covers the driver's contexts and events; the VMM calls are in
prism_core.testing.vmm.FakeCudaDriver (one module-shaped fake per concern, sharing `CUresult`).

Install like the SMI fakes: `monkeypatch.setitem(sys.modules, "cuda.bindings.driver", FakeCudaEventDriver())`,
`monkeypatch.setitem(sys.modules, "hip.hip", FakeHip())`. Return conventions follow the real bindings: a tuple
whose first element is the error enum (cuda-python, hip-python). pyACL's events live on `FakeAcl` (vendors.py).

All three share `FakeEventClock`: a recorded event is stamped with the host clock, and answers "not ready" to
its first `not_ready_polls` queries, so the code under test meets the asynchronous path every time.
Synchronising calls exist and are counted in `sync_calls`, so tests can prove they are never made.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any


class EventState(enum.Enum):
    DONE = "done"
    NOT_READY = "not ready"
    INVALID = "invalid"


@dataclass
class _Event:
    recorded_ns: int | None = None
    stream: int | None = None
    polls_left: int = 0


class FakeEventClock:
    """Event bookkeeping shared by the binding fakes."""

    def __init__(self, not_ready_polls: int = 1) -> None:
        self.not_ready_polls = not_ready_polls
        self.events: dict[int, _Event] = {}
        self.records: list[tuple[int, int]] = []  # (event, stream) in record order
        self.created = 0
        self.destroyed = 0
        self._next = 1
        self._lock = threading.Lock()

    def create(self) -> int:
        with self._lock:
            handle = self._next
            self._next += 1
            self.events[handle] = _Event()
            self.created += 1
            return handle

    def record(self, event: int, stream: int) -> bool:
        with self._lock:
            ev = self.events.get(int(event))
            if ev is None:
                return False
            ev.recorded_ns, ev.stream, ev.polls_left = time.perf_counter_ns(), int(stream), self.not_ready_polls
            self.records.append((int(event), int(stream)))
            return True

    def query(self, event: int) -> EventState:
        with self._lock:
            ev = self.events.get(int(event))
            if ev is None:
                return EventState.INVALID
            if ev.polls_left > 0:
                ev.polls_left -= 1
                return EventState.NOT_READY
            return EventState.DONE

    def elapsed_ms(self, start: int, end: int) -> float | EventState:
        with self._lock:
            a, b = self.events.get(int(start)), self.events.get(int(end))
            if a is None or b is None or a.recorded_ns is None or b.recorded_ns is None:
                return EventState.INVALID
            if a.polls_left or b.polls_left:
                return EventState.NOT_READY
            return (b.recorded_ns - a.recorded_ns) / 1e6

    def destroy(self, event: int) -> bool:
        with self._lock:
            if self.events.pop(int(event), None) is None:
                return False
            self.destroyed += 1
            return True

    @property
    def live(self) -> int:
        return len(self.events)


# cuda-python: cuda.bindings.driver ------------------------------------------------------------------------


class CUresult(enum.IntEnum):
    """The subset of cuda.bindings.driver.CUresult the plugin meets (values as in the CUDA driver API)."""

    CUDA_SUCCESS = 0
    CUDA_ERROR_INVALID_VALUE = 1
    CUDA_ERROR_OUT_OF_MEMORY = 2
    CUDA_ERROR_NOT_INITIALIZED = 3
    CUDA_ERROR_NO_DEVICE = 100
    CUDA_ERROR_INVALID_DEVICE = 101
    CUDA_ERROR_INVALID_CONTEXT = 201
    CUDA_ERROR_INVALID_HANDLE = 400
    CUDA_ERROR_NOT_READY = 600
    CUDA_ERROR_ILLEGAL_ADDRESS = 700
    CUDA_ERROR_LAUNCH_FAILED = 719


class CUevent_flags(enum.IntEnum):
    CU_EVENT_DEFAULT = 0
    CU_EVENT_BLOCKING_SYNC = 1
    CU_EVENT_DISABLE_TIMING = 2


_Cu = CUresult  # annotations inside the fake, where CUresult names the class attribute


@dataclass
class FakeCudaEventDriver:
    """cuda.bindings.driver on a host with GPUs at `pci_bus_ids`; `init_error` makes cuInit raise it (no driver).

    Contexts are per thread as in CUDA: creating or recording an event with no current context fails with
    CUDA_ERROR_INVALID_CONTEXT. `fail` maps a function name to the CUresult it returns instead of succeeding.
    """

    CUresult = _Cu
    CUevent_flags = CUevent_flags

    pci_bus_ids: list[str] = field(default_factory=lambda: ["00000000:01:00.0"])
    init_error: Exception | None = None
    not_ready_polls: int = 1
    fail: dict[str, _Cu] = field(default_factory=dict)
    retained: dict[int, int] = field(default_factory=dict)
    sync_calls: list[str] = field(default_factory=list)
    event_flags: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clock = FakeEventClock(self.not_ready_polls)
        self._tls = threading.local()

    def _failed(self, name: str) -> _Cu | None:
        return self.fail.get(name)

    def _stack(self) -> list[int]:
        if not hasattr(self._tls, "stack"):
            self._tls.stack = []
        stack: list[int] = self._tls.stack
        return stack

    def _current(self) -> int:
        stack = self._stack()
        return stack[-1] if stack else 0

    # Initialisation, devices, contexts

    def cuInit(self, flags: int) -> tuple[_Cu]:
        if self.init_error is not None:
            raise self.init_error
        return (self._failed("cuInit") or CUresult.CUDA_SUCCESS,)

    def cuDeviceGet(self, ordinal: int) -> tuple[_Cu, int]:
        if not 0 <= ordinal < len(self.pci_bus_ids):
            return CUresult.CUDA_ERROR_INVALID_DEVICE, 0
        return CUresult.CUDA_SUCCESS, ordinal

    def cuDeviceGetByPCIBusId(self, bus_id: bytes) -> tuple[_Cu, int]:
        wanted = bus_id.decode().lower()
        for i, b in enumerate(self.pci_bus_ids):
            if b.lower() == wanted:
                return CUresult.CUDA_SUCCESS, i
        return CUresult.CUDA_ERROR_INVALID_VALUE, 0

    def cuDevicePrimaryCtxRetain(self, dev: int) -> tuple[_Cu, int]:
        if err := self._failed("cuDevicePrimaryCtxRetain"):
            return err, 0
        self.retained[dev] = self.retained.get(dev, 0) + 1
        return CUresult.CUDA_SUCCESS, 1000 + dev

    def cuDevicePrimaryCtxRelease(self, dev: int) -> tuple[_Cu]:
        self.retained[dev] = self.retained.get(dev, 0) - 1
        return (CUresult.CUDA_SUCCESS,)

    def cuCtxGetCurrent(self) -> tuple[_Cu, int]:
        return CUresult.CUDA_SUCCESS, self._current()

    def cuCtxSetCurrent(self, ctx: int) -> tuple[_Cu]:
        stack = self._stack()
        if stack:
            stack[-1] = int(ctx)
        else:
            stack.append(int(ctx))
        return (CUresult.CUDA_SUCCESS,)

    def cuCtxPushCurrent(self, ctx: int) -> tuple[_Cu]:
        self._stack().append(int(ctx))
        return (CUresult.CUDA_SUCCESS,)

    def cuCtxPopCurrent(self) -> tuple[_Cu, int]:
        stack = self._stack()
        return CUresult.CUDA_SUCCESS, stack.pop() if stack else 0

    def cuGetErrorName(self, err: _Cu) -> tuple[_Cu, bytes]:
        return CUresult.CUDA_SUCCESS, CUresult(err).name.encode()

    # Events

    def cuEventCreate(self, flags: int) -> tuple[_Cu, int]:
        if err := self._failed("cuEventCreate"):
            return err, 0
        if not self._current():
            return CUresult.CUDA_ERROR_INVALID_CONTEXT, 0
        self.event_flags.append(int(flags))
        return CUresult.CUDA_SUCCESS, self.clock.create()

    def cuEventRecord(self, event: int, stream: int) -> tuple[_Cu]:
        if err := self._failed("cuEventRecord"):
            return (err,)
        if not self._current():
            return (CUresult.CUDA_ERROR_INVALID_CONTEXT,)
        return (CUresult.CUDA_SUCCESS if self.clock.record(event, stream) else CUresult.CUDA_ERROR_INVALID_HANDLE,)

    def cuEventQuery(self, event: int) -> tuple[_Cu]:
        if err := self._failed("cuEventQuery"):
            return (err,)
        state = self.clock.query(event)
        return (_CUDA_STATE[state],)

    def cuEventElapsedTime(self, start: int, end: int) -> tuple[_Cu, float]:
        if err := self._failed("cuEventElapsedTime"):
            return err, 0.0
        ms = self.clock.elapsed_ms(start, end)
        if isinstance(ms, EventState):
            return _CUDA_STATE[ms], 0.0
        return CUresult.CUDA_SUCCESS, ms

    def cuEventDestroy(self, event: int) -> tuple[_Cu]:
        return (CUresult.CUDA_SUCCESS if self.clock.destroy(event) else CUresult.CUDA_ERROR_INVALID_HANDLE,)

    # What a timing backend must never call
    def cuEventSynchronize(self, event: int) -> tuple[_Cu]:
        self.sync_calls.append("cuEventSynchronize")
        return (CUresult.CUDA_SUCCESS,)

    def cuStreamSynchronize(self, stream: int) -> tuple[_Cu]:
        self.sync_calls.append("cuStreamSynchronize")
        return (CUresult.CUDA_SUCCESS,)

    def cuCtxSynchronize(self) -> tuple[_Cu]:
        self.sync_calls.append("cuCtxSynchronize")
        return (CUresult.CUDA_SUCCESS,)


_CUDA_STATE = {
    EventState.DONE: CUresult.CUDA_SUCCESS,
    EventState.NOT_READY: CUresult.CUDA_ERROR_NOT_READY,
    EventState.INVALID: CUresult.CUDA_ERROR_INVALID_HANDLE,
}


# hip-python: `from hip import hip` ------------------------------------------------------------------------


class hipError_t(enum.IntEnum):
    hipSuccess = 0
    hipErrorInvalidValue = 1
    hipErrorInvalidDevice = 101
    hipErrorInvalidHandle = 400
    hipErrorNotReady = 600
    hipErrorLaunchFailure = 719


_Hip = hipError_t


@dataclass
class FakeHip:
    """hip-python's `hip` module with `device_count` GPUs. The current device is per thread, as in HIP."""

    hipError_t = _Hip

    device_count: int = 1
    not_ready_polls: int = 1
    fail: dict[str, _Hip] = field(default_factory=dict)
    sync_calls: list[str] = field(default_factory=list)
    event_device: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clock = FakeEventClock(self.not_ready_polls)
        self._tls = threading.local()

    def hipGetDeviceCount(self) -> tuple[_Hip, int]:
        return hipError_t.hipSuccess, self.device_count

    def hipGetDevice(self) -> tuple[_Hip, int]:
        return hipError_t.hipSuccess, getattr(self._tls, "device", 0)

    def hipSetDevice(self, device: int) -> tuple[_Hip]:
        if not 0 <= device < self.device_count:
            return (hipError_t.hipErrorInvalidDevice,)
        self._tls.device = device
        return (hipError_t.hipSuccess,)

    def hipEventCreate(self) -> tuple[_Hip, int]:
        if err := self.fail.get("hipEventCreate"):
            return err, 0
        event = self.clock.create()
        self.event_device[event] = getattr(self._tls, "device", 0)
        return hipError_t.hipSuccess, event

    def hipEventRecord(self, event: int, stream: int) -> tuple[_Hip]:
        if err := self.fail.get("hipEventRecord"):
            return (err,)
        return (hipError_t.hipSuccess if self.clock.record(event, stream) else hipError_t.hipErrorInvalidHandle,)

    def hipEventQuery(self, event: int) -> tuple[_Hip]:
        if err := self.fail.get("hipEventQuery"):
            return (err,)
        return (_HIP_STATE[self.clock.query(event)],)

    def hipEventElapsedTime(self, start: int, end: int) -> tuple[_Hip, float]:
        ms = self.clock.elapsed_ms(start, end)
        if isinstance(ms, EventState):
            return _HIP_STATE[ms], 0.0
        return hipError_t.hipSuccess, ms

    def hipEventDestroy(self, event: int) -> tuple[_Hip]:
        return (hipError_t.hipSuccess if self.clock.destroy(event) else hipError_t.hipErrorInvalidHandle,)

    def hipEventSynchronize(self, event: int) -> tuple[_Hip]:
        self.sync_calls.append("hipEventSynchronize")
        return (hipError_t.hipSuccess,)

    def hipStreamSynchronize(self, stream: int) -> tuple[_Hip]:
        self.sync_calls.append("hipStreamSynchronize")
        return (hipError_t.hipSuccess,)


_HIP_STATE = {
    EventState.DONE: hipError_t.hipSuccess,
    EventState.NOT_READY: hipError_t.hipErrorNotReady,
    EventState.INVALID: hipError_t.hipErrorInvalidHandle,
}


# torch, as seen from a timing backend -----------------------------------------------------------------------


def fake_torch(module: str = "cuda", stream: int = 0x7F00, attribute: str = "cuda_stream") -> Any:
    """A stand-in for `torch` with an available device module whose current stream has handle `stream`.

    Install with `monkeypatch.setitem(sys.modules, "torch", fake_torch())`; change `.current[0]` to switch
    streams. Only what `CurrentStream` reads is there.
    """
    current = [stream]
    accel = SimpleNamespace(
        is_available=lambda: True,
        current_stream=lambda: SimpleNamespace(**{attribute: current[0]}),
    )
    return SimpleNamespace(**{module: accel}, current=current)
