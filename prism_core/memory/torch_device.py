"""Prism's device id for a torch device, so engines that hand Prism a torch device find their VMM backend."""

from __future__ import annotations

from typing import Any

from prism_core.errors import UsageError


def prism_device(device: Any) -> str:
    """cpu:0, nvidia:N, amd:N (ROCm's torch calls its GPUs cuda) or ascend:N for a torch device or its name; a
    GPU without an index is the current one, as torch places tensors there."""
    import torch  # lazily: prism_core never imports torch at module level

    device = torch.device(device)
    if device.type == "cpu":
        return "cpu:0"
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"{'amd' if torch.version.hip else 'nvidia'}:{index}"
    if device.type == "npu":
        return f"ascend:{device.index or 0}"
    raise UsageError(f"no Prism VMM backend for torch device {device}")
