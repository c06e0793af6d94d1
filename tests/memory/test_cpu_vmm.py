"""The cpu VMM backend passes the conformance suite and keeps unmapped ranges inaccessible."""

from __future__ import annotations

from pathlib import Path

import pytest

from prism_core.memory import VmmBackend, map_all
from prism_core.plugins import PluginHost
from prism_core.testing import VmmConformance
from prism_plugins.cpu.host import cpu_device
from prism_plugins.cpu.vmm import CpuVmm


class TestCpuVmm(VmmConformance):
    @pytest.fixture
    def vmm_backend(self) -> VmmBackend:
        return CpuVmm(cpu_device())


def _perms(addr: int) -> str:
    """The permissions /proc/self/maps shows for the mapping that holds `addr`."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        span, perms = line.split()[:2]
        lo, hi = (int(x, 16) for x in span.split("-"))
        if lo <= addr < hi:
            return perms
    raise AssertionError(f"{addr:#x} is in no mapping")


def test_hook_gives_cpu_backend_only_for_cpu(builtin_host: PluginHost) -> None:
    cpu = builtin_host.device("cpu:0")
    backend = builtin_host.vmm_backend(cpu)
    assert isinstance(backend, CpuVmm)
    backend.close()
    other = cpu.model_copy(update={"id": "nvidia:0", "vendor": "nvidia"})
    assert not isinstance(builtin_host.vmm_backend(other), CpuVmm)


def test_kernel_sees_prot_none_after_unmap_and_after_rollback() -> None:
    vmm = CpuVmm(cpu_device())
    g = vmm.granularity
    addr = vmm.reserve(3 * g)
    try:
        assert _perms(addr) == "---p"
        hs = [vmm.create(g) for _ in range(3)]
        vmm.map(addr, g, hs[0])
        assert _perms(addr) == "rw-s"
        vmm.unmap(addr, g)
        assert _perms(addr) == "---p"
        vmm.release(hs[2])
        with pytest.raises(ValueError):
            map_all(vmm, [(addr + i * g, g, h) for i, h in enumerate(hs)])
        assert [_perms(addr + i * g) for i in range(3)] == ["---p"] * 3
    finally:
        vmm.close()
