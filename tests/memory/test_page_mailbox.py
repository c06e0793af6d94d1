"""The mailbox that moves page handles between processes: what fits is imported, the rest is closed."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from prism_core.memory.broker.mailbox import Mailbox, donate
from prism_core.plugins import PluginHost


def test_handles_of_the_right_size_are_imported_and_the_rest_closed(builtin_host: PluginHost, tmp_path: Path) -> None:
    vmm = builtin_host.vmm_backend(builtin_host.device("cpu:0"))
    assert vmm is not None
    g = vmm.granularity
    where = str(tmp_path / "ledger")
    box = Mailbox(where, 3)
    try:
        assert box.drain(vmm, g, 10) == [], "nothing sent yet"
        handles = [vmm.create(g) for _ in range(3)]
        addr = vmm.reserve(g)
        vmm.map(addr, g, handles[0])
        ctypes.memset(addr, 0x3C, g)
        fds = [vmm.export(h) for h in handles]
        assert donate(where, 3, os.getpid(), g, fds)
        assert donate(where, 3, os.getpid(), 2 * g, fds[:1]), "a wrong size is delivered, then dropped"
        assert not donate(where, 4, os.getpid(), g, fds), "nobody listens on slot 4"
        for fd in fds:
            os.close(fd)
        got = box.drain(vmm, g, 2)  # room for two: the third is closed, as is the wrong-sized one
        assert len(got) == 2
        vmm.unmap(addr, g)
        vmm.map(addr, g, got[0])
        assert ctypes.string_at(addr, 2) == b"\x3c\x3c", "the same physical page, contents and all"
        assert box.drain(vmm, g, 10) == []
    finally:
        box.close()
        vmm.close()
