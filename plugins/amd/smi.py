"""amdsmi access shared by the AMD sampler and fault: guarded import, init, and the device's processor handle.

`import amdsmi` raises KeyError (not ImportError) on a host without ROCm, and prints to stdout while doing so;
`import_vendor` catches any exception. pyrsmi 1.1 is itself backed by libamd_smi, so its device indices and
amdsmi's processor handles follow the same order.
"""

from __future__ import annotations

from typing import Any

from prism_core.models import Device, Unavailable
from prism_core.vendor import import_vendor
from prism_plugins.amd.probe import VENDOR

AMDSMI_HINT = "install ROCm's amdsmi Python package (it needs libamd_smi.so from ROCm)"


class AmdSmi:
    """An initialised amdsmi with the handle of one device; `close()` shuts it down (idempotent)."""

    def __init__(self, amdsmi: Any, device: Device) -> None:
        self.lib = amdsmi
        flags = getattr(getattr(amdsmi, "AmdSmiInitFlags", None), "INIT_AMD_GPUS", None)
        if flags is None:
            amdsmi.amdsmi_init()
        else:
            amdsmi.amdsmi_init(flags)
        self._open = True
        try:
            handles = amdsmi.amdsmi_get_processor_handles()
            if device.index >= len(handles):
                raise RuntimeError(f"amdsmi lists {len(handles)} GPUs; no handle for {device.id}")
            self.handle = handles[device.index]
        except BaseException:
            self.close()
            raise

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """What amdsmi raises for one failed query (plus KeyError for a missing key in its result dicts)."""
        base = getattr(self.lib, "AmdSmiException", None) or self.lib.AmdSmiLibraryException
        return (base, KeyError)

    def close(self) -> None:
        if self._open:
            self._open = False
            self.lib.amdsmi_shut_down()


def open_amdsmi(device: Device) -> AmdSmi | Unavailable:
    lib = import_vendor("amdsmi", VENDOR, AMDSMI_HINT)
    if isinstance(lib, Unavailable):
        return lib
    try:
        return AmdSmi(lib, device)
    except Exception as exc:  # init boundary: any failure means amdsmi is not usable here, with its reason
        return Unavailable(vendor=VENDOR, reason=f"amdsmi: {exc}", error_type=type(exc).__name__)
