"""nvidia, amd and ascend: real probes on this host, and the vendor SDKs' answers through fakes."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest

import prism_plugins.amd
import prism_plugins.ascend
import prism_plugins.nvidia
from prism_core.models import Device, Unavailable
from prism_core.testing import AcceleratorConformance, FakeAcl, FakeGpu, FakeNvml, FakeRocml
from prism_core.testing.vendors import NVMLError_LibraryNotFound, ROCMLError_LibraryNotFound
from prism_plugins.amd.probe import probe as amd_probe
from prism_plugins.ascend.probe import probe as ascend_probe
from prism_plugins.nvidia.probe import probe as nvidia_probe

VENDORS = [prism_plugins.nvidia, prism_plugins.amd, prism_plugins.ascend]


@pytest.mark.parametrize("plugin", VENDORS, ids=lambda p: p.__name__)
class TestVendorConformance(AcceleratorConformance):
    """On this host each answers Unavailable; on a GPU host the same suite checks the devices."""

    @pytest.fixture
    def prism_plugin(self, plugin: ModuleType) -> ModuleType:
        return plugin


# The real libraries on a host without the hardware -------------------------------------------------------


def _real_or_skip(result: list[Device] | Unavailable) -> Unavailable:
    if not isinstance(result, Unavailable):
        pytest.skip(f"this host has the hardware: {[d.id for d in result]}")
    return result


def test_nvidia_without_driver_reports_nvml_reason() -> None:
    pytest.importorskip("pynvml", reason="the nvidia extra is not installed")
    u = _real_or_skip(nvidia_probe())
    assert (u.vendor, u.error_type) == ("nvidia", "NVMLError_LibraryNotFound")
    assert "NVML Shared Library Not Found" in u.reason


def test_amd_without_rocm_reports_smi_reason() -> None:
    pytest.importorskip("pyrsmi", reason="the amd extra is not installed")
    u = _real_or_skip(amd_probe())
    assert (u.vendor, u.error_type) == ("amd", "ROCMLError_LibraryNotFound")
    assert "libamd_smi.so" in u.reason


def test_ascend_without_cann_says_how_to_get_pyacl() -> None:
    u = _real_or_skip(ascend_probe())
    assert (u.vendor, u.error_type) == ("ascend", "ModuleNotFoundError")
    assert "CANN" in u.reason


# Fakes at the binding boundary: the paths this host cannot take -----------------------------------------


def test_nvidia_lists_gpus_and_shuts_nvml_down(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml(gpus=[FakeGpu(name="H100"), FakeGpu(name="H100", uuid="GPU-2", compute_capability=(9, 0))])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    devices = nvidia_probe()
    assert isinstance(devices, list)
    assert [d.id for d in devices] == ["nvidia:0", "nvidia:1"]
    assert devices[1].properties["uuid"] == "GPU-2"
    assert devices[0].properties["pci_bus_id"] == "00000000:01:00.0"  # bytes from NVML decoded
    assert devices[0].properties["compute_capability"] == "9.0"
    assert fake.initialised == 0


def test_nvidia_init_error_keeps_the_vendor_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(init_error=NVMLError_LibraryNotFound()))
    u = nvidia_probe()
    assert isinstance(u, Unavailable)
    assert (u.reason, u.error_type) == ("NVML Shared Library Not Found", "NVMLError_LibraryNotFound")


def test_missing_extra_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError, as without nvidia-ml-py
    u = nvidia_probe()
    assert isinstance(u, Unavailable) and "prism-xpu[nvidia]" in u.reason


def test_amd_lists_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRocml(gpus=[FakeGpu(name="MI300X", memory_total=192 * 2**30)])
    monkeypatch.setitem(sys.modules, "pyrsmi.rocml", fake)
    devices = amd_probe()
    assert isinstance(devices, list)
    assert (devices[0].id, devices[0].memory_total_bytes) == ("amd:0", 192 * 2**30)
    assert fake.initialised == 0


def test_amd_minus_one_is_an_error_not_a_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyrsmi.rocml", FakeRocml(gpus=[FakeGpu()], memory_read_fails=True))
    u = amd_probe()
    assert isinstance(u, Unavailable) and "memory size" in u.reason


def test_amd_init_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyrsmi.rocml", FakeRocml(init_error=ROCMLError_LibraryNotFound("no smi")))
    u = amd_probe()
    assert isinstance(u, Unavailable) and u.error_type == "ROCMLError_LibraryNotFound"


def test_ascend_reads_value_then_ret(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeAcl(npus=[FakeGpu(memory_total=64 * 2**30), FakeGpu(memory_total=32 * 2**30)])
    monkeypatch.setitem(sys.modules, "acl", fake)
    devices = ascend_probe()
    assert isinstance(devices, list)
    assert [(d.id, d.memory_total_bytes, d.name) for d in devices] == [
        ("ascend:0", 64 * 2**30, "Ascend910B"),
        ("ascend:1", 32 * 2**30, "Ascend910B"),
    ]
    assert fake.calls[-1] == "finalize" and "reset_device(1)" in fake.calls


def test_ascend_error_code_becomes_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "acl", FakeAcl(init_ret=100000))
    u = ascend_probe()
    assert isinstance(u, Unavailable) and u.reason == "aclInit returned ACL error 100000"


# Real hardware, where a task has it ------------------------------------------------------------------------


@pytest.mark.gpu
def test_nvidia_probe_finds_real_gpus() -> None:
    result = nvidia_probe()
    if isinstance(result, Unavailable):
        pytest.skip(f"no NVIDIA GPU here: {result}")
    assert all(d.memory_total_bytes > 2**30 and d.properties["uuid"].startswith("GPU-") for d in result)
