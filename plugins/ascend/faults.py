"""Ascend fault injectors: the torch side-stream loads through torch_npu (GEMM, D2D and H2D copies).

There is no clock-lock equivalent here: pyACL has no clock control, and npu-smi's frequency settings were not
verified, so none is offered. The loads are offered only where torch_npu imports and has an NPU.
"""

from __future__ import annotations

import importlib

from prism_core.faults import FaultInjector
from prism_core.faults.device_load import torch_has, torch_loads
from prism_core.models import Unavailable
from prism_plugins.ascend.probe import VENDOR, probe


def ascend_faults() -> list[FaultInjector]:
    if isinstance(probe(), Unavailable):
        return []
    try:
        importlib.import_module("torch_npu")  # registers torch.npu
    except Exception:  # no torch_npu: no torch faults on this host
        return []
    faults: list[FaultInjector] = []
    if torch_has("npu"):
        faults += torch_loads(VENDOR, "npu")
    return faults
