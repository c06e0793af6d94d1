"""Fakes at the vendor SDK boundary: module-shaped stand-ins for pynvml, pyrsmi.rocml and pyACL.

Install one with `monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(...))`. Each fake answers like the real
binding on a host with the given GPUs, or fails like it does on a host without the library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any


@dataclass
class FakeGpu:
    name: str = "Fake GPU 80GB"
    memory_total: int = 80 * 2**30
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    pci_bus_id: str = "00000000:01:00.0"
    compute_capability: tuple[int, int] = (9, 0)


class FakeNvmlError(Exception):
    """Shaped like pynvml.NVMLError_* (each error is its own class, str() is NVML's message)."""


class NVMLError_LibraryNotFound(FakeNvmlError):
    def __str__(self) -> str:
        return "NVML Shared Library Not Found"


@dataclass
class FakeNvml:
    """pynvml with `gpus`; `init_error` makes nvmlInit raise it, as on a host without the driver."""

    gpus: list[FakeGpu] = field(default_factory=list)
    init_error: Exception | None = None
    driver_version: str = "580.00"
    initialised: int = 0

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
        return SimpleNamespace(total=h.memory_total, used=0, free=h.memory_total)

    def nvmlDeviceGetUUID(self, h: FakeGpu) -> str:
        return h.uuid

    def nvmlDeviceGetPciInfo(self, h: FakeGpu) -> Any:
        return SimpleNamespace(busId=h.pci_bus_id.encode())

    def nvmlDeviceGetCudaComputeCapability(self, h: FakeGpu) -> tuple[int, int]:
        return h.compute_capability


class ROCMLError_LibraryNotFound(Exception):
    pass


@dataclass
class FakeRocml:
    """pyrsmi.rocml: like the real one, an unreadable memory size comes back as -1, not an exception."""

    gpus: list[FakeGpu] = field(default_factory=list)
    init_error: Exception | None = None
    memory_read_fails: bool = False
    initialised: int = 0

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


@dataclass
class FakeAcl:
    """pyACL (`import acl`): calls return `ret` codes, queries return `(value..., ret)`."""

    npus: list[FakeGpu] = field(default_factory=list)
    init_ret: int = 0
    soc_name: str = "Ascend910B"
    calls: list[str] = field(default_factory=list)
    current: int | None = None

    def __post_init__(self) -> None:
        self.rt = SimpleNamespace(
            get_device_count=lambda: (len(self.npus), 0),
            set_device=self._set_device,
            reset_device=lambda i: self._call(f"reset_device({i})"),
            get_mem_info=self._get_mem_info,
        )

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
