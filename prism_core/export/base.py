"""Exporters: where records go. A spec string picks one; plugins contribute factories per scheme."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from prism_core.errors import UsageError
from prism_core.models import Record


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """`scheme` plus what follows it: 'jsonl:out.jsonl', 'otlp+grpc://127.0.0.1:4317', 'console'."""

    scheme: str
    target: str

    @classmethod
    def parse(cls, text: str) -> ExportSpec:
        text = text.strip()
        if "://" in text:
            scheme, _, target = text.partition("://")
        else:
            scheme, _, target = text.partition(":")
        if not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
            raise UsageError(f"export spec {text!r} has no scheme (expected e.g. 'jsonl:PATH', 'otlp', 'console')")
        return cls(scheme.lower(), target)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.target}" if self.target else self.scheme


@runtime_checkable
class Exporter(Protocol):
    """Receives records in batches on the collector thread; never on the engine's thread."""

    spec: ExportSpec

    def export(self, records: Sequence[Record]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None:
        """Flush and release. Idempotent."""
        ...


@runtime_checkable
class ExporterFactory(Protocol):
    """Builds exporters for the schemes it names; `create` raises UsageError on a bad target."""

    schemes: tuple[str, ...]

    def create(self, spec: ExportSpec) -> Exporter: ...
