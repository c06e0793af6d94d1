"""The CUDA VMM backend against a fake driver at the cuda-python boundary, and for real where a GPU is lent."""

from __future__ import annotations

import sys

import pytest

from prism_core.errors import UsageError
from prism_core.memory import CannotSchedule, ElasticKVCache, KvSpec, VmmBackend, VmmError, map_all
from prism_core.models import Device, Unavailable
from prism_core.testing import FakeCudaDriver, VmmConformance
from prism_plugins.nvidia.vmm import CudaVmm, cuda_vmm

GPU = Device(id="nvidia:0", vendor="nvidia", index=0, name="Fake H100", memory_total_bytes=1 << 30)
MIB = 2**20


class TestCudaVmmOnFakeDriver(VmmConformance):
    @pytest.fixture
    def vmm_backend(self) -> VmmBackend:
        return CudaVmm(GPU, FakeCudaDriver())


def test_map_sets_access_and_close_returns_everything() -> None:
    driver = FakeCudaDriver()
    vmm = CudaVmm(GPU, driver)
    assert vmm.granularity == 2 * MIB and driver.primary_refs == 1
    addr = vmm.reserve(4 * MIB)
    vmm.map(addr, 2 * MIB, vmm.create(2 * MIB))
    assert driver.accessible == {addr}, "every mapped page gets read-write access for the device"
    vmm.close()
    assert not (driver.mapped or driver.allocations or driver.reserved) and driver.primary_refs == 0


def test_driver_errors_become_vmm_errors_and_roll_back() -> None:
    driver = FakeCudaDriver()
    vmm = CudaVmm(GPU, driver)
    addr = vmm.reserve(6 * MIB)
    hs = [vmm.create(2 * MIB) for _ in range(3)]
    driver.fail["cuMemSetAccess"] = 3
    with pytest.raises(VmmError, match="cuMemSetAccess"):
        map_all(vmm, [(addr + i * 2 * MIB, 2 * MIB, h) for i, h in enumerate(hs)])
    assert not driver.mapped, "a failed multi-page map leaves nothing mapped"
    with pytest.raises(UsageError):
        vmm.map(addr + MIB, 2 * MIB, hs[0])  # caught before the driver sees it
    vmm.close()


def test_out_of_device_memory_is_cannot_schedule_not_a_crash() -> None:
    driver = FakeCudaDriver(memory=8 * MIB)
    spec = KvSpec(num_layers=1, block_size=16, token_shape=(8, 64), dtype="float16")  # 16 KiB blocks
    with ElasticKVCache(spec, 1024, backend=CudaVmm(GPU, driver), max_reserved_pages=0) as cache:
        per_page = 2 * MIB // spec.block_bytes
        assert not isinstance(cache.alloc(per_page), CannotSchedule)
        refused = cache.alloc(4 * per_page)
        assert "refused a page" in getattr(refused, "reason", "")
        assert len(driver.mapped) == 4, "null page + one page id (K and V): the failed grow mapped nothing"


def test_spare_handles_spare_cumemcreate() -> None:
    driver = FakeCudaDriver()
    spec = KvSpec(num_layers=2, block_size=16, token_shape=(8, 64), dtype="float16")
    per_page = 2 * MIB // spec.block_bytes
    with ElasticKVCache(
        spec, 512, backend=CudaVmm(GPU, driver), keep_handles=2, max_reserved_pages=0, background=False
    ) as cache:
        ids = cache.alloc(2 * per_page)
        cache.free(ids)  # type: ignore[arg-type]
        created = driver.calls["cuMemCreate"]
        cache.alloc(2 * per_page)
        assert driver.calls["cuMemCreate"] == created


def test_missing_cuda_is_unavailable_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", None)
    got = cuda_vmm(GPU)
    assert isinstance(got, Unavailable) and "cuda.bindings.driver" in got.reason


@pytest.mark.gpu
def test_real_gpu_passes_the_basics() -> None:
    from prism_core.plugins import host

    gpus = [d for d in host().devices() if d.vendor == "nvidia"]
    if not gpus:
        pytest.skip("no NVIDIA GPU here")
    backend = cuda_vmm(gpus[0])
    assert not isinstance(backend, Unavailable), backend
    addr = backend.reserve(4 * backend.granularity)
    h = backend.create(backend.granularity)
    backend.map(addr, backend.granularity, h)
    backend.unmap(addr, backend.granularity)
    backend.close()
