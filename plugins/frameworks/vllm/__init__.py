"""The vLLM framework plugin: per-iteration stage capture for the V1 engine, activated with no code change."""

from __future__ import annotations

from prism_core import hookimpl
from prism_core.capture import FrameworkAdapter
from prism_plugins.frameworks.vllm.adapter import SUPPORTED, VllmAdapter


@hookimpl
def prism_framework_adapters() -> list[FrameworkAdapter]:
    return [VllmAdapter()]


__all__ = ["SUPPORTED", "VllmAdapter", "prism_framework_adapters"]
