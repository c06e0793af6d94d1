"""Telemetry samplers of nvidia, amd and ascend through their fakes: SI units, and reasons instead of zeros."""

from __future__ import annotations

import pytest
from vendor_hosts import AmdHost, AscendHost, NvidiaHost

from prism_core.capture.readings import CounterRates, Unreadable
from prism_core.export import names
from prism_core.models import Unavailable
from prism_core.testing.amd_smi import AmdSmiLibraryException
from prism_core.testing.vendors import NVMLError_NoPermission, NVMLError_NotSupported
from prism_plugins.amd.telemetry import RocmTelemetry, rocm_telemetry
from prism_plugins.ascend import npu_smi
from prism_plugins.ascend.telemetry import AscendTelemetry, ascend_telemetry
from prism_plugins.nvidia.telemetry import NvmlTelemetry, nvml_telemetry

GIB = 2**30


def nvml_sampler(host: NvidiaHost) -> NvmlTelemetry:
    s = nvml_telemetry(host.device, 1.0)
    assert isinstance(s, NvmlTelemetry), s
    return s


def test_nvml_values_are_converted_to_si(nvidia_host: NvidiaHost) -> None:
    gpu = nvidia_host.nvml.gpus[0]
    gpu.clock_event_reasons = 0x4  # nvmlClocksEventReasonSwPowerCap
    s = nvml_sampler(nvidia_host)
    v = s.sample().values
    assert v[names.HW_GPU_UTILIZATION] == pytest.approx(0.37)  # 37 %
    assert v[names.PRISM_GPU_MEMORY_BUSY] == pytest.approx(0.12)
    assert v[names.HW_GPU_MEMORY_USAGE] == 3 * GIB and v[names.HW_GPU_MEMORY_LIMIT] == 80 * GIB
    assert v[names.PRISM_GPU_CLOCK_SM] == 1_980_000_000 and v[names.PRISM_GPU_CLOCK_MEMORY] == 2_619_000_000  # MHz->Hz
    assert v[names.HW_POWER] == pytest.approx(312.5)  # 312500 mW -> W
    assert v[names.HW_TEMPERATURE] == 54
    assert v[names.PRISM_GPU_PCIE_TX] == 1_000 * 1024 and v[names.PRISM_GPU_PCIE_RX] == 2_000 * 1024  # KB/s->B/s
    assert v[names.PRISM_GPU_CLOCK_EVENT_REASONS] == 4
    assert (v[names.PRISM_GPU_ECC_CORRECTED], v[names.PRISM_GPU_ECC_UNCORRECTED]) == (3, 0)
    s.close()
    s.close()
    assert nvidia_host.nvml.initialised == 0, "every nvmlInit is matched by nvmlShutdown"


def test_nvml_per_call_failures_are_reasons_not_zeros(nvidia_host: NvidiaHost) -> None:
    nvidia_host.nvml.fail = {
        "nvmlDeviceGetPowerUsage": NVMLError_NotSupported(),
        "nvmlDeviceGetTotalEccErrors": NVMLError_NotSupported(),
        "nvmlDeviceRegisterEvents": NVMLError_NoPermission(),
    }
    s = nvml_sampler(nvidia_host)
    sample = s.sample()
    assert names.HW_POWER not in sample.values
    assert sample.unreadable[names.HW_POWER] == "NVMLError_NotSupported: Not Supported"
    assert sample.unreadable[names.PRISM_GPU_ECC_UNCORRECTED].startswith("NVMLError_NotSupported")
    assert "Insufficient Permissions" in sample.unreadable[names.PRISM_GPU_XID_ERRORS]
    assert "NVLink" in sample.unreadable[names.PRISM_GPU_LINK_TX], "a PCIe-only card says it has no NVLink"
    assert set(sample.values) | set(sample.unreadable) == set(s.fields())
    assert sample.values[names.HW_TEMPERATURE] == 54, "one failed call costs its own fields only"
    s.close()


def test_nvlink_rate_and_xid_count(nvidia_host: NvidiaHost) -> None:
    gpu = nvidia_host.nvml.gpus[0]
    gpu.nvlink_links, gpu.nvlink_kib = 4, (4_000, 8_000)
    now = [100.0]
    s = NvmlTelemetry(nvidia_host.nvml, nvidia_host.device, clock=lambda: now[0])
    gpu.nvlink_kib = (4_000 + 2_000, 8_000 + 4_000)
    now[0] = 102.0
    nvidia_host.nvml.xid(0, 79)
    nvidia_host.nvml.xid(0, 48)
    v = s.sample().values
    assert v[names.PRISM_GPU_LINK_TX] == pytest.approx(1_000 * 1024)  # 2000 KiB over 2 s
    assert v[names.PRISM_GPU_LINK_RX] == pytest.approx(2_000 * 1024)
    assert v[names.PRISM_GPU_XID_ERRORS] == 2
    assert s.sample().values[names.PRISM_GPU_XID_ERRORS] == 2, "a count since start, not per sample"
    s.close()
    assert "nvmlEventSetFree" in nvidia_host.nvml.calls


def test_counter_rates_need_a_base_and_survive_resets() -> None:
    now = [0.0]
    rates = CounterRates(clock=lambda: now[0])
    with pytest.raises(Unreadable):
        rates.rates({"x": 10})
    now[0] = 2.0
    assert rates.rates({"x": 30}) == {"x": 10.0}
    now[0] = 3.0
    with pytest.raises(Unreadable):
        rates.rates({"x": 5})  # went backwards: a driver reset, not a negative rate
    now[0] = 4.0
    assert rates.rates({"x": 6}) == {"x": 1.0}


def test_amd_pyrsmi_and_amdsmi_units(amd_host: AmdHost) -> None:
    s = rocm_telemetry(amd_host.device)
    assert isinstance(s, RocmTelemetry), s
    v = s.sample().values
    assert v[names.HW_GPU_UTILIZATION] == pytest.approx(0.37)
    assert v[names.HW_GPU_MEMORY_USAGE] == GIB and v[names.HW_GPU_MEMORY_LIMIT] == 192 * GIB
    assert v[names.HW_POWER] == pytest.approx(312.5)  # pyrsmi already gives W
    assert v[names.PRISM_GPU_PCIE_THROUGHPUT] == 3_000_000
    assert v[names.PRISM_GPU_CLOCK_SM] == 1_980_000_000 and v[names.HW_TEMPERATURE] == 54
    s.close()
    assert amd_host.rocml.initialised == 0 and amd_host.amdsmi.initialised == 0


def test_amd_minus_one_and_amdsmi_errors_are_reasons(amd_host: AmdHost) -> None:
    amd_host.rocml.minus_one = {"smi_get_device_average_power"}
    amd_host.amdsmi.fail["amdsmi_get_temp_metric"] = AmdSmiLibraryException(2)
    s = rocm_telemetry(amd_host.device)
    assert isinstance(s, RocmTelemetry)
    sample = s.sample()
    assert "returned -1" in sample.unreadable[names.HW_POWER] and names.HW_POWER not in sample.values
    assert "AMDSMI_STATUS_NOT_SUPPORTED" in sample.unreadable[names.HW_TEMPERATURE]
    s.close()


def test_amd_without_amdsmi_reads_pyrsmi_and_explains_the_rest(
    amd_host: AmdHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "amdsmi", None)  # as `import amdsmi` failing without ROCm
    s = rocm_telemetry(amd_host.device)
    assert isinstance(s, RocmTelemetry)
    sample = s.sample()
    assert sample.values[names.HW_GPU_UTILIZATION] == pytest.approx(0.37)
    for field in (names.PRISM_GPU_CLOCK_SM, names.PRISM_GPU_CLOCK_MEMORY, names.HW_TEMPERATURE):
        assert sample.unreadable[field].startswith("amdsmi unavailable")
    s.close()


SMI_TABLE = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 24.1.0                   Version: 24.1.0                                               |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 98.5        43                0    / 0             |
| 0                         | 0000:C1:00.0  | 12          0    / 0          4096 / 65536         |
+===========================+===============+====================================================+
| 1     910B3               | OK            | NA          40                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          3000 / 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| No running processes found in NPU 0                                                            |
"""


def test_npu_smi_table_parses_by_column_name() -> None:
    chips = npu_smi.parse_info(SMI_TABLE)
    assert [c["bus_id"] for c in chips] == ["0000:C1:00.0", "0000:C2:00.0"]
    assert npu_smi.number(chips[0], "Power(W)") == 98.5
    assert npu_smi.used_total(chips[0], "HBM-Usage(MB)") == (4096, 65536)
    with pytest.raises(Unreadable, match="'NA'"):
        npu_smi.number(chips[1], "Power(W)")


def test_ascend_acl_utilisation_and_npu_smi(ascend_host: AscendHost) -> None:
    s = AscendTelemetry(ascend_host.acl, ascend_host.device, read_smi=lambda: SMI_TABLE)
    v = s.sample().values
    assert v[names.HW_GPU_UTILIZATION] == pytest.approx(0.40)  # cube
    assert v[names.PRISM_NPU_VECTOR_UTILIZATION] == pytest.approx(0.20)
    assert v[names.HW_POWER] == 98.5 and v[names.HW_TEMPERATURE] == 43
    assert v[names.HW_GPU_MEMORY_USAGE] == 4096 * 2**20 and v[names.HW_GPU_MEMORY_LIMIT] == 64 * GIB


def test_ascend_minus_one_and_missing_npu_smi_are_reasons(ascend_host: AscendHost) -> None:
    ascend_host.acl.npus[0].utilization = (40, -1)  # no Vector units on this part
    s = ascend_telemetry(ascend_host.device)
    assert not isinstance(s, Unavailable)
    sample = s.sample()
    assert "returned -1" in sample.unreadable[names.PRISM_NPU_VECTOR_UTILIZATION]
    assert "npu-smi is not on PATH" in sample.unreadable[names.HW_POWER]
    assert set(sample.values) | set(sample.unreadable) == set(s.fields())
