"""The HIP and ACL VMM backends against fakes at the hip-python / pyACL boundary, and their absence here."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from prism_core.errors import UsageError
from prism_core.memory import CannotSchedule, ElasticKVCache, KvSpec, VmmBackend, VmmError, map_all
from prism_core.models import Device, Unavailable
from prism_core.plugins import PluginHost
from prism_core.testing import FakeAclVmm, FakeCudaDriver, FakeHipDriver, VmmConformance
from prism_plugins.amd.vmm import HipVmm, hip_vmm
from prism_plugins.ascend.vmm import ACL_HBM_MEM_HUGE, AclVmm, acl_vmm

MIB = 2**20
GPU = Device(id="amd:0", vendor="amd", index=0, name="Fake MI300X", memory_total_bytes=1 << 30)
NPU = Device(id="ascend:0", vendor="ascend", index=0, name="Fake 910B", memory_total_bytes=1 << 30)


class TestHipVmmOnFakeDriver(VmmConformance):
    @pytest.fixture
    def vmm_backend(self) -> VmmBackend:
        return HipVmm(GPU, FakeHipDriver())


class TestAclVmmOnFakeRuntime(VmmConformance):
    @pytest.fixture
    def vmm_backend(self) -> VmmBackend:
        return AclVmm(NPU, FakeAclVmm())


def test_hip_maps_with_access_and_rolls_back_a_failed_batch() -> None:
    hip = FakeHipDriver()
    vmm = HipVmm(GPU, hip)
    assert vmm.granularity == 2 * MIB and vmm.export_is_fd
    addr = vmm.reserve(6 * MIB)
    hs = [vmm.create(2 * MIB) for _ in range(3)]
    hip.cuda.fail["cuMemSetAccess"] = 3  # the third hipMemSetAccess from now
    with pytest.raises(VmmError, match="hipMemSetAccess failed on amd:0: hipErrorOutOfMemory"):
        map_all(vmm, [(addr + i * 2 * MIB, 2 * MIB, h) for i, h in enumerate(hs)])
    assert not hip.cuda.mapped, "all or nothing"
    vmm.map(addr, 2 * MIB, hs[0])
    assert hip.cuda.accessible == {addr}
    vmm.close()
    assert not (hip.cuda.mapped or hip.cuda.allocations or hip.cuda.reserved)


def test_acl_uses_value_ret_order_and_its_own_unmap() -> None:
    acl = FakeAclVmm()
    vmm = AclVmm(NPU, acl)
    assert not vmm.export_is_fd, "ACL shares a uint64 id, not a descriptor"
    addr = vmm.reserve(4 * MIB)
    a, b = vmm.create(2 * MIB), vmm.create(2 * MIB)
    assert acl.props[0]["memAttr"] == ACL_HBM_MEM_HUGE and acl.props[0]["location"] == {"id": 0, "type": 1}
    map_all(vmm, [(addr, 2 * MIB, a), (addr + 2 * MIB, 2 * MIB, b)])
    vmm.unmap(addr, 4 * MIB)  # one aclrtUnmapMem per mapping in the range
    assert not acl.cuda.mapped
    with pytest.raises(UsageError):
        vmm.map(addr + MIB, 2 * MIB, a)  # misaligned: caught before the runtime sees it
    acl.cuda.fail["cuMemCreate"] = 1
    with pytest.raises(VmmError, match="malloc_physical failed on ascend:0: ret 200000"):
        vmm.create(2 * MIB)
    vmm.close()
    assert not (acl.cuda.mapped or acl.cuda.allocations or acl.cuda.reserved)


@pytest.mark.parametrize("make", [lambda d: HipVmm(GPU, FakeHipDriver(d)), lambda d: AclVmm(NPU, FakeAclVmm(d))])
def test_out_of_device_memory_is_cannot_schedule(make: object) -> None:
    driver = FakeCudaDriver(memory=8 * MIB)
    spec = KvSpec(num_layers=1, block_size=16, token_shape=(8, 64), dtype="float16")
    with ElasticKVCache(spec, 1024, backend=make(driver), max_reserved_pages=0) as cache:  # type: ignore[operator]
        per_page = 2 * MIB // spec.block_bytes
        assert not isinstance(cache.alloc(per_page), CannotSchedule)
        refused = cache.alloc(4 * per_page)
        assert "refused a page" in getattr(refused, "reason", "")
        assert len(driver.mapped) == 4


def test_absent_libraries_are_unavailable_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hip", None)
    monkeypatch.setitem(sys.modules, "hip.hip", None)
    monkeypatch.setitem(sys.modules, "acl", None)
    for got in (hip_vmm(GPU), acl_vmm(NPU)):
        assert isinstance(got, Unavailable) and "not importable" in got.reason


def test_a_failing_runtime_init_is_unavailable_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = SimpleNamespace(init=lambda: 507000, rt=FakeAclVmm().rt)
    monkeypatch.setitem(sys.modules, "acl", broken)
    got = acl_vmm(NPU)
    assert isinstance(got, Unavailable) and "507000" in got.reason


def test_hooks_answer_only_for_their_vendor(builtin_host: PluginHost) -> None:
    assert builtin_host.vmm_backend(GPU) is None  # no hip-python here: logged and None, never a crash
    assert builtin_host.vmm_backend(NPU) is None
