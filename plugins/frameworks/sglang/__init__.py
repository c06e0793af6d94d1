"""The SGLang framework plugin: stage capture for SGLang's scheduler loop (normal and overlap)."""

from __future__ import annotations

from prism_core import hookimpl
from prism_core.capture import FrameworkAdapter
from prism_plugins.frameworks.sglang.adapter import SUPPORTED, SglangAdapter
from prism_plugins.frameworks.sglang.loop import SchedulerInstrumentation


@hookimpl
def prism_framework_adapters() -> list[FrameworkAdapter]:
    return [SglangAdapter()]


__all__ = ["SUPPORTED", "SchedulerInstrumentation", "SglangAdapter", "prism_framework_adapters"]
