"""What `prism plugins` reports about each plugin."""

from __future__ import annotations

from typing import Literal

from prism_core.models.base import Frozen


class PluginInfo(Frozen):
    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    hooks: list[str]
    status: Literal["available", "unavailable", "failed"]
    reason: str | None = None
