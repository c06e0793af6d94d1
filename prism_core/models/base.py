"""Base for every pydantic model that crosses a boundary (CLI JSON, files, the wire)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Immutable, strict: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")
