"""The transformers framework plugin: stage capture for Hugging Face `generate()` and continuous batching."""

from __future__ import annotations

from prism_core import hookimpl
from prism_core.capture import FrameworkAdapter
from prism_plugins.frameworks.transformers.adapter import TransformersAdapter


@hookimpl
def prism_framework_adapters() -> list[FrameworkAdapter]:
    return [TransformersAdapter()]


__all__ = ["TransformersAdapter", "prism_framework_adapters"]
