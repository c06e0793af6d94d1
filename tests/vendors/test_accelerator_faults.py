"""GPU fault injectors: restore guarantees of the clock lock and perf level, and the torch load loop on CPU."""

from __future__ import annotations

import sys

import pytest
from vendor_hosts import AmdHost, NvidiaHost

from prism_core.faults import FaultInjector
from prism_core.faults.device_load import TorchLoad, torch_loads
from prism_core.testing.amd_smi import AmdSmiLibraryException
from prism_core.testing.vendors import FakeNvmlError, NVMLError_NoPermission
from prism_plugins.amd.faults import AmdPerfLevelLow
from prism_plugins.nvidia.faults import NvmlClockLock, clock_for


class NVMLError_Unknown(FakeNvmlError):
    def __str__(self) -> str:
        return "Unknown Error"


def lock(host: NvidiaHost) -> NvmlClockLock:
    return NvmlClockLock(host.nvml, host.device)


def test_clock_lock_goes_to_the_minimum_and_back(nvidia_host: NvidiaHost) -> None:
    gpu, fault = nvidia_host.nvml.gpus[0], lock(nvidia_host)
    assert isinstance(fault, FaultInjector) and not fault.active
    fault.start(1.0)
    assert gpu.locked_clocks == (345, 345) and fault.locked_mhz == 345 and fault.active
    assert nvidia_host.nvml.nvmlDeviceGetClockInfo(gpu, 1) == 345, "the SM clock reads back locked"
    fault.stop()
    assert gpu.locked_clocks is None and not fault.active
    fault.stop()  # idempotent
    assert nvidia_host.nvml.calls.count("nvmlDeviceResetGpuLockedClocks") == 1
    assert nvidia_host.nvml.initialised == 0


def test_intensity_picks_a_supported_clock_between_max_and_min() -> None:
    clocks = [345, 1000, 1500, 1980]
    assert clock_for(clocks, 1.0) == 345
    assert clock_for(clocks, 0.1) == 1980  # target 1816.5: 1980 is nearest
    assert clock_for(clocks, 0.5) == 1000  # target 1162.5
    with pytest.raises(ValueError):
        NvmlClockLock(None, None).start(0)  # type: ignore[arg-type]


def test_no_permission_is_a_clear_error_and_nothing_changed(nvidia_host: NvidiaHost) -> None:
    nvidia_host.nvml.fail["nvmlDeviceSetGpuLockedClocks"] = NVMLError_NoPermission()
    fault = lock(nvidia_host)
    with pytest.raises(PermissionError, match="needs root"):
        fault.start(1.0)
    assert not fault.active and nvidia_host.nvml.gpus[0].locked_clocks is None
    assert "nvmlDeviceResetGpuLockedClocks" not in nvidia_host.nvml.calls, "nothing was changed, nothing to undo"
    assert nvidia_host.nvml.initialised == 0


def test_a_start_failing_half_way_resets_the_clocks(nvidia_host: NvidiaHost) -> None:
    nvml, gpu = nvidia_host.nvml, nvidia_host.nvml.gpus[0]
    real_set = nvml.nvmlDeviceSetGpuLockedClocks

    def set_then_fail(h: object, lo: int, hi: int) -> None:  # the driver applied the lock, then reported an error
        real_set(h, lo, hi)  # type: ignore[arg-type]
        raise NVMLError_Unknown()

    nvml.nvmlDeviceSetGpuLockedClocks = set_then_fail  # type: ignore[method-assign]
    fault = lock(nvidia_host)
    with pytest.raises(NVMLError_Unknown):
        fault.start(1.0)
    assert gpu.locked_clocks is None and not fault.active, "a failed start must leave the clocks reset"
    assert nvml.initialised == 0


def test_a_failed_restore_keeps_the_fault_active_for_a_retry(nvidia_host: NvidiaHost) -> None:
    nvml, fault = nvidia_host.nvml, lock(nvidia_host)
    fault.start(0.5)
    nvml.fail["nvmlDeviceResetGpuLockedClocks"] = NVMLError_Unknown()
    with pytest.raises(NVMLError_Unknown):
        fault.stop()
    assert fault.active, "the clocks are still locked: stop must not pretend otherwise"
    del nvml.fail["nvmlDeviceResetGpuLockedClocks"]
    fault.stop()
    assert not fault.active and nvml.gpus[0].locked_clocks is None


def test_exit_guard_restores_a_fault_left_running(nvidia_host: NvidiaHost) -> None:
    fault = lock(nvidia_host)
    fault.start(1.0)
    fault._restore_at_exit()  # what atexit runs if the process ends with the fault on
    assert nvidia_host.nvml.gpus[0].locked_clocks is None


def test_amd_perf_level_low_then_the_previous_level(amd_host: AmdHost) -> None:
    gpu = amd_host.amdsmi.gpus[0]
    gpu.perf_level = "HIGH"
    fault = AmdPerfLevelLow(amd_host.device)
    fault.start(0.1)
    assert gpu.perf_level == "LOW"
    assert amd_host.amdsmi.amdsmi_get_clock_info(gpu, amd_host.amdsmi.AmdSmiClkType.GFX)["clk"] == 345
    fault.stop()
    fault.stop()
    assert gpu.perf_level == "HIGH" and amd_host.amdsmi.initialised == 0


def test_amd_no_permission(amd_host: AmdHost) -> None:
    amd_host.amdsmi.fail["amdsmi_set_gpu_perf_level"] = AmdSmiLibraryException(10, "AMDSMI_STATUS_NO_PERM")
    fault = AmdPerfLevelLow(amd_host.device)
    with pytest.raises(PermissionError, match="needs root"):
        fault.start(1.0)
    assert amd_host.amdsmi.gpus[0].perf_level == "AUTO" and amd_host.amdsmi.initialised == 0


@pytest.mark.parametrize("fault", torch_loads("cpu", "cpu"), ids=lambda f: f.name)
def test_torch_load_runs_on_its_own_thread_and_stops(fault: TorchLoad) -> None:
    pytest.importorskip("torch")
    assert isinstance(fault, FaultInjector)
    fault.start(0.5)
    try:
        assert fault.active
        for _ in range(200):
            if fault.bursts >= 2:
                break
            fault._stop.wait(0.01)
    finally:
        fault.stop()
    assert fault.bursts >= 2 and fault.error is None and not fault.active
    fault.stop()


def test_torch_load_without_the_device_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    fault = TorchLoad("nvidia.compute_preemption", "gemm", device_type="cuda")
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        pytest.skip("this host has CUDA")
    with pytest.raises(RuntimeError, match="no usable 'cuda' device"):
        fault.start(0.5)
    assert not fault.active
