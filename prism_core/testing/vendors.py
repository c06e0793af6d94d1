"""Fakes at the vendor SDK boundary: module-shaped stand-ins for pynvml, pyrsmi.rocml and pyACL.

Install one with `monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(...))`. Each fake answers like the real
binding on a host with the given GPUs, or fails like it does on a host without the library. Telemetry comes back
in each library's own units (NVML: MHz, mW, KB/s; pyrsmi: W, bytes/s), so unit conversions are tested for real.
Per-call failures: `fail={"nvmlDeviceGetPowerUsage": NVMLError_NotSupported()}` (exception-raising libraries) or
`minus_one={"smi_get_device_average_power"}` (pyrsmi, which returns -1). The event fakes of cuda-python and
hip-python are in prism_core.testing.device_events, the amdsmi fake in prism_core.testing.amd_smi.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from prism_core.testing.device_events import EventState, FakeEventClock


@dataclass
class FakeGpu:
    name: str = "Fake GPU 80GB"
    memory_total: int = 80 * 2**30
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    pci_bus_id: str = "00000000:01:00.0"
    compute_capability: tuple[int, int] = (9, 0)
    # Telemetry, in NVML's units; the other fakes convert to their library's.
    utilization: tuple[int, int] = (37, 12)  # compute %, memory-busy %
    memory_used: int = 0
    clocks_mhz: tuple[int, int] = (1980, 2619)  # SM, memory
    power_mw: int = 312_500
    temperature_c: int = 54
    pcie_kbps: tuple[int, int] = (1_000, 2_000)  # tx, rx
    clock_event_reasons: int = 0
    ecc_errors: tuple[int, int] = (3, 0)  # corrected, uncorrected
    graphics_clocks_mhz: tuple[int, ...] = (1980, 1500, 1000, 345)  # supported SM clocks
    nvlink_links: int = 0
    nvlink_kib: tuple[int, int] = (0, 0)  # cumulative tx, rx over all active links
    # State the fault injectors change
    locked_clocks: tuple[int, int] | None = None
    perf_level: str = "AUTO"


class FakeNvmlError(Exception):
    """Shaped like pynvml.NVMLError_* (each error is its own class, str() is NVML's message)."""


class NVMLError_LibraryNotFound(FakeNvmlError):
    def __str__(self) -> str:
        return "NVML Shared Library Not Found"


class NVMLError_NotSupported(FakeNvmlError):
    def __str__(self) -> str:
        return "Not Supported"


class NVMLError_NoPermission(FakeNvmlError):
    def __str__(self) -> str:
        return "Insufficient Permissions"


class NVMLError_Timeout(FakeNvmlError):
    def __str__(self) -> str:
        return "Timeout"


@dataclass
class FakeNvml:
    """pynvml with `gpus`; `init_error` makes nvmlInit raise it, as on a host without the driver.

    `fail` maps a function name to the exception that call raises; `calls` lists every device call made.
    `xid(gpu_index, code)` delivers an XID event to the event sets registered for that GPU.
    """

    NVMLError = FakeNvmlError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_NoPermission = NVMLError_NoPermission
    NVMLError_Timeout = NVMLError_Timeout
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0
    NVML_PCIE_UTIL_TX_BYTES = 0
    NVML_PCIE_UTIL_RX_BYTES = 1
    NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_VOLATILE_ECC = 0
    NVML_FEATURE_ENABLED = 1
    NVML_NVLINK_MAX_LINKS = 18
    NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX = 138
    NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX = 139
    NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3
    nvmlEventTypeXidCriticalError = 8

    gpus: list[FakeGpu] = field(default_factory=list)
    init_error: Exception | None = None
    driver_version: str = "580.00"
    initialised: int = 0
    fail: dict[str, Exception] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    event_sets: dict[int, list[Any]] = field(default_factory=dict)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGpu:
        return self.gpus[i]

    def nvmlDeviceGetName(self, h: FakeGpu) -> str:
        return h.name

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu) -> Any:
        self._call("nvmlDeviceGetMemoryInfo")
        return SimpleNamespace(total=h.memory_total, used=h.memory_used, free=h.memory_total - h.memory_used)

    def nvmlDeviceGetUUID(self, h: FakeGpu) -> str:
        return h.uuid

    def nvmlDeviceGetPciInfo(self, h: FakeGpu) -> Any:
        return SimpleNamespace(busId=h.pci_bus_id.encode())

    def nvmlDeviceGetCudaComputeCapability(self, h: FakeGpu) -> tuple[int, int]:
        return h.compute_capability

    def nvmlDeviceGetHandleByPciBusId(self, bus_id: bytes | str) -> FakeGpu:
        wanted = bus_id.decode() if isinstance(bus_id, bytes) else bus_id
        for g in self.gpus:
            if g.pci_bus_id.lower() == wanted.lower():
                return g
        raise NVMLError_NotSupported()

    # Telemetry

    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> Any:
        self._call("nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=h.utilization[0], memory=h.utilization[1])

    def nvmlDeviceGetClockInfo(self, h: FakeGpu, clock: int) -> int:
        self._call("nvmlDeviceGetClockInfo")
        if clock == self.NVML_CLOCK_SM and h.locked_clocks is not None:
            return h.locked_clocks[1]
        return h.clocks_mhz[0 if clock == self.NVML_CLOCK_SM else 1]

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: FakeGpu) -> int:
        self._call("nvmlDeviceGetCurrentClocksEventReasons")
        return h.clock_event_reasons

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        self._call("nvmlDeviceGetPowerUsage")
        return h.power_mw

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:
        self._call("nvmlDeviceGetTemperature")
        return h.temperature_c

    def nvmlDeviceGetPcieThroughput(self, h: FakeGpu, counter: int) -> int:
        self._call("nvmlDeviceGetPcieThroughput")
        return h.pcie_kbps[counter]

    def nvmlDeviceGetTotalEccErrors(self, h: FakeGpu, error_type: int, counter_type: int) -> int:
        self._call("nvmlDeviceGetTotalEccErrors")
        return h.ecc_errors[error_type]

    def nvmlDeviceGetNvLinkState(self, h: FakeGpu, link: int) -> int:
        self._call("nvmlDeviceGetNvLinkState")
        if link >= h.nvlink_links:
            raise NVMLError_NotSupported()
        return self.NVML_FEATURE_ENABLED

    def nvmlDeviceGetFieldValues(self, h: FakeGpu, field_ids: list[Any]) -> list[Any]:
        self._call("nvmlDeviceGetFieldValues")
        out = []
        for fid in field_ids:
            field_id, scope = fid if isinstance(fid, tuple) else (fid, 0)
            total = h.nvlink_kib[0 if field_id == self.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX else 1]
            per_link = total // max(1, h.nvlink_links)
            out.append(
                SimpleNamespace(
                    fieldId=field_id,
                    scopeId=scope,
                    nvmlReturn=0,
                    valueType=self.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG,
                    value=SimpleNamespace(ullVal=per_link),
                )
            )
        return out

    # XID events

    def nvmlEventSetCreate(self) -> list[Any]:
        self._call("nvmlEventSetCreate")
        return []

    def nvmlDeviceRegisterEvents(self, h: FakeGpu, event_types: int, event_set: list[Any]) -> None:
        self._call("nvmlDeviceRegisterEvents")
        self.event_sets.setdefault(self.gpus.index(h), []).append(event_set)

    def nvmlEventSetWait_v2(self, event_set: list[Any], timeout_ms: int) -> Any:
        if not event_set:
            raise NVMLError_Timeout()
        return event_set.pop(0)

    def nvmlEventSetFree(self, event_set: list[Any]) -> None:
        self._call("nvmlEventSetFree")

    def xid(self, gpu: int, code: int) -> None:
        for event_set in self.event_sets.get(gpu, []):
            event_set.append(
                SimpleNamespace(eventType=self.nvmlEventTypeXidCriticalError, eventData=code, device=self.gpus[gpu])
            )

    # Clock control

    def nvmlDeviceGetSupportedMemoryClocks(self, h: FakeGpu) -> list[int]:
        self._call("nvmlDeviceGetSupportedMemoryClocks")
        return [h.clocks_mhz[1]]

    def nvmlDeviceGetSupportedGraphicsClocks(self, h: FakeGpu, memory_mhz: int) -> list[int]:
        self._call("nvmlDeviceGetSupportedGraphicsClocks")
        return list(h.graphics_clocks_mhz)

    def nvmlDeviceSetGpuLockedClocks(self, h: FakeGpu, min_mhz: int, max_mhz: int) -> None:
        self._call("nvmlDeviceSetGpuLockedClocks")
        h.locked_clocks = (min_mhz, max_mhz)

    def nvmlDeviceResetGpuLockedClocks(self, h: FakeGpu) -> None:
        self._call("nvmlDeviceResetGpuLockedClocks")
        h.locked_clocks = None


class ROCMLError_LibraryNotFound(Exception):
    pass


@dataclass
class FakeRocml:
    """pyrsmi.rocml: like the real one, an unreadable value comes back as -1, not an exception.

    `minus_one` names the functions that fail that way (`memory_read_fails` is the older switch for the size).
    """

    gpus: list[FakeGpu] = field(default_factory=list)
    init_error: Exception | None = None
    memory_read_fails: bool = False
    initialised: int = 0
    minus_one: set[str] = field(default_factory=set)

    def _value(self, name: str, value: float) -> float:
        return -1 if name in self.minus_one else value

    def smi_initialize(self) -> None:
        if self.init_error is not None:
            raise self.init_error
        self.initialised += 1

    def smi_shutdown(self) -> None:
        self.initialised -= 1

    def smi_get_device_count(self) -> int:
        return len(self.gpus)

    def smi_get_device_name(self, i: int) -> str:
        return self.gpus[i].name

    def smi_get_device_memory_total(self, i: int) -> int:
        return -1 if self.memory_read_fails else self.gpus[i].memory_total

    def smi_get_device_uuid(self, i: int) -> str:
        return self.gpus[i].uuid

    def smi_get_device_utilization(self, i: int) -> float:
        return self._value("smi_get_device_utilization", self.gpus[i].utilization[0])

    def smi_get_device_memory_busy(self, i: int) -> float:
        return self._value("smi_get_device_memory_busy", self.gpus[i].utilization[1])

    def smi_get_device_memory_used(self, i: int, type: str = "VRAM") -> float:
        return self._value("smi_get_device_memory_used", self.gpus[i].memory_used)

    def smi_get_device_average_power(self, i: int) -> float:
        return self._value("smi_get_device_average_power", self.gpus[i].power_mw / 1000)  # pyrsmi gives W

    def smi_get_device_pcie_throughput(self, i: int) -> float:
        tx, rx = self.gpus[i].pcie_kbps
        return self._value("smi_get_device_pcie_throughput", (tx + rx) * 1000)  # pyrsmi gives bytes/s


ACL_ERROR_RT_CONTEXT_NULL = 107002
ACL_ERROR_RT_PARAM_INVALID = 107000


@dataclass
class FakeAcl:
    """pyACL (`import acl`): calls return `ret` codes, queries return `(value..., ret)`.

    Events need a device set on the calling thread (`rt.set_device`), else ACL_ERROR_RT_CONTEXT_NULL, as in ACL.
    `fail` maps an `acl.rt` function name to the `ret` it returns instead of 0.
    """

    npus: list[FakeGpu] = field(default_factory=list)
    init_ret: int = 0
    soc_name: str = "Ascend910B"
    calls: list[str] = field(default_factory=list)
    current: int | None = None
    not_ready_polls: int = 1
    fail: dict[str, int] = field(default_factory=dict)
    sync_calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clock = FakeEventClock(self.not_ready_polls)
        self.rt = SimpleNamespace(
            get_device_count=lambda: (len(self.npus), 0),
            set_device=self._set_device,
            reset_device=lambda i: self._call(f"reset_device({i})"),
            get_mem_info=self._get_mem_info,
            create_event=self._create_event,
            record_event=self._record_event,
            query_event_status=self._query_event_status,
            event_elapsed_time=self._event_elapsed_time,
            destroy_event=self._destroy_event,
            synchronize_event=lambda e: self._sync("synchronize_event"),
            synchronize_stream=lambda s: self._sync("synchronize_stream"),
            get_device_utilization_rate=self._utilization,
            get_context=self._get_context,
            set_context=self._set_context,
        )

    def _get_context(self) -> tuple[int, int]:
        if self.current is None:
            return 0, ACL_ERROR_RT_CONTEXT_NULL
        return 500 + self.current, 0

    def _set_context(self, ctx: int) -> int:
        self.current = ctx - 500
        return 0

    def _sync(self, what: str) -> int:
        self.sync_calls.append(what)
        return 0

    def _create_event(self) -> tuple[int, int]:
        if ret := self.fail.get("create_event"):
            return 0, ret
        if self.current is None:
            return 0, ACL_ERROR_RT_CONTEXT_NULL
        return self.clock.create(), 0

    def _record_event(self, event: int, stream: int) -> int:
        if ret := self.fail.get("record_event"):
            return ret
        return 0 if self.clock.record(event, stream) else ACL_ERROR_RT_PARAM_INVALID

    def _query_event_status(self, event: int) -> tuple[int, int]:
        if ret := self.fail.get("query_event_status"):
            return 0, ret
        state = self.clock.query(event)
        if state is EventState.INVALID:
            return 0, ACL_ERROR_RT_PARAM_INVALID
        return (1 if state is EventState.DONE else 0), 0  # ACL_EVENT_RECORDED_STATUS_COMPLETE / NOT_READY

    def _event_elapsed_time(self, start: int, end: int) -> tuple[float, int]:
        ms = self.clock.elapsed_ms(start, end)
        if isinstance(ms, EventState):
            return 0.0, ACL_ERROR_RT_PARAM_INVALID
        return ms, 0

    def _destroy_event(self, event: int) -> int:
        return 0 if self.clock.destroy(event) else ACL_ERROR_RT_PARAM_INVALID

    def _utilization(self, device: int) -> tuple[dict[str, int], int]:
        if ret := self.fail.get("get_device_utilization_rate"):
            return {}, ret
        cube, vector = self.npus[device].utilization
        # memory utilisation is reserved in CANN and always -1; vector is -1 on parts without vector units
        info = {"cube_utilization": cube, "vector_utilization": vector, "aicpu_utilization": 3}
        return {**info, "memory_utilization": -1}, 0

    def _call(self, what: str) -> int:
        self.calls.append(what)
        return 0

    def _set_device(self, i: int) -> int:
        self.current = i
        return self._call(f"set_device({i})")

    def _get_mem_info(self, attr: int) -> tuple[int, int, int]:
        if self.current is None:
            return 0, 0, 107002  # ACL_ERROR_RT_CONTEXT_NULL: no device set on this thread
        total = self.npus[self.current].memory_total
        return total, total, 0

    def init(self) -> int:
        self.calls.append("init")
        return self.init_ret

    def finalize(self) -> int:
        return self._call("finalize")

    def get_soc_name(self) -> str:
        return self.soc_name
