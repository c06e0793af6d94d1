"""Fake of ROCm's `amdsmi` Python module (clocks, temperature, performance level) for the AMD plugin's tests.

Install with `monkeypatch.setitem(sys.modules, "amdsmi", FakeAmdSmi(gpus=[...]))`; install `None` instead to
stand for the real module failing at import without ROCm (it raises KeyError there).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import SimpleNamespace

from prism_core.testing.vendors import FakeGpu


class AmdSmiLibraryException(Exception):
    """Shaped like amdsmi.AmdSmiLibraryException: the status code and its name in the message."""

    def __init__(self, code: int, name: str = "AMDSMI_STATUS_NOT_SUPPORTED") -> None:
        super().__init__(f"Error code:\n\t{code} | {name}")
        self.err_code = code

    def get_error_code(self) -> int:
        return self.err_code


class AmdSmiClkType(enum.IntEnum):
    SYS = 0
    GFX = 0
    DF = 1
    DCEF = 2
    SOC = 3
    MEM = 4


class AmdSmiTemperatureType(enum.IntEnum):
    EDGE = 0
    HOTSPOT = 1
    JUNCTION = 1
    VRAM = 2


class AmdSmiTemperatureMetric(enum.IntEnum):
    CURRENT = 0


class AmdSmiDevPerfLevel(enum.IntEnum):
    AUTO = 0
    LOW = 1
    HIGH = 2
    MANUAL = 3
    STABLE_STD = 4
    STABLE_PEAK = 5
    STABLE_MIN_MCLK = 6
    STABLE_MIN_SCLK = 7
    DETERMINISM = 8


_Clk = AmdSmiClkType


_TempType = AmdSmiTemperatureType


_TempMetric = AmdSmiTemperatureMetric


_PerfLevel = AmdSmiDevPerfLevel


@dataclass
class FakeAmdSmi:
    """amdsmi (clocks, temperature, performance level). `import_error` stands for the KeyError the real
    module raises at import without ROCm: tests install `None` in sys.modules for that instead."""

    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiClkType = AmdSmiClkType
    AmdSmiTemperatureType = AmdSmiTemperatureType
    AmdSmiTemperatureMetric = AmdSmiTemperatureMetric
    AmdSmiDevPerfLevel = AmdSmiDevPerfLevel
    AmdSmiInitFlags = SimpleNamespace(INIT_AMD_GPUS=2)

    gpus: list[FakeGpu] = field(default_factory=list)
    fail: dict[str, Exception] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    initialised: int = 0

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    def amdsmi_init(self, flags: int = 0) -> None:
        self._call("amdsmi_init")
        self.initialised += 1

    def amdsmi_shut_down(self) -> None:
        self.initialised -= 1

    def amdsmi_get_processor_handles(self) -> list[FakeGpu]:
        return list(self.gpus)

    def amdsmi_get_clock_info(self, h: FakeGpu, clk_type: _Clk) -> dict[str, int]:
        self._call("amdsmi_get_clock_info")
        mhz = h.clocks_mhz[1] if clk_type == AmdSmiClkType.MEM else h.clocks_mhz[0]
        if clk_type != AmdSmiClkType.MEM and h.perf_level == "LOW":
            mhz = min(h.graphics_clocks_mhz)
        return {"clk": mhz, "min_clk": min(h.graphics_clocks_mhz), "max_clk": max(h.graphics_clocks_mhz)}

    def amdsmi_get_temp_metric(self, h: FakeGpu, sensor: _TempType, metric: _TempMetric) -> int:
        self._call("amdsmi_get_temp_metric")
        return h.temperature_c

    def amdsmi_get_gpu_perf_level(self, h: FakeGpu) -> str:
        self._call("amdsmi_get_gpu_perf_level")
        return f"AMDSMI_DEV_PERF_LEVEL_{h.perf_level}"

    def amdsmi_set_gpu_perf_level(self, h: FakeGpu, level: _PerfLevel) -> None:
        self._call("amdsmi_set_gpu_perf_level")
        h.perf_level = AmdSmiDevPerfLevel(level).name
