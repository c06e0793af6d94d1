"""File and terminal exporters: jsonl:PATH and console."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pydantic import TypeAdapter

from prism_core.errors import UsageError
from prism_core.export.base import Exporter, ExportSpec
from prism_core.models import BatchRecord, Record

RECORD: TypeAdapter[Record] = TypeAdapter(Record)  # one line of a jsonl export, whichever kind


def read_jsonl(path: str | Path) -> list[Record]:
    """Every record of a file a JsonlExporter wrote."""
    return [RECORD.validate_json(line) for line in Path(path).read_text().splitlines() if line.strip()]


class JsonlExporter:
    """One JSON object per line, the README's record format. Lines are written whole or not at all.

    Unbuffered: each export call is one append (write syscall) of whole lines, so `prism top FILE` and `tail -f`
    see records as the collector hands them out, and a killed process leaves no partial line behind.
    """

    def __init__(self, spec: ExportSpec) -> None:
        if not spec.target:
            raise UsageError("jsonl export needs a path: 'jsonl:PATH'")
        path = Path(spec.target)
        if path.is_dir():
            raise UsageError(f"jsonl export path {path} is a directory")
        if not path.parent.is_dir():
            raise UsageError(f"jsonl export folder {path.parent} does not exist")
        self.spec = spec
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def export(self, records: Sequence[Record]) -> None:
        if self._fd is None:
            raise RuntimeError(f"{self.spec} is closed")
        data = "".join(r.model_dump_json() + "\n" for r in records).encode()
        while data:  # a regular file takes it in one write; a pipe may take part of it
            data = data[os.write(self._fd, data) :]

    def flush(self) -> None:
        """Nothing is held back: every export call is already written."""

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class ConsoleExporter:
    """A line per batch and per request on stderr, for a quick look without a backend."""

    def __init__(self, spec: ExportSpec, stream: TextIO | None = None) -> None:
        self.spec = spec
        self._stream = stream or sys.stderr

    def export(self, records: Sequence[Record]) -> None:
        self._stream.write("".join(_line(r) + "\n" for r in records))

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        self.flush()


def _line(record: Record) -> str:
    if isinstance(record, BatchRecord):
        stages = " ".join(f"{k}={v.wall_ns / 1e6:.2f}ms" for k, v in record.stages.items())
        return (
            f"batch {record.model} {record.mode} bs={record.batch_size} "
            f"{record.duration_ns / 1e6:.2f}ms {stages}".rstrip()
        )
    if record.kind == "request":
        ttft = "-" if record.ttft_s is None else f"{record.ttft_s * 1e3:.1f}ms"
        return f"request {record.model} ttft={ttft} e2e={record.e2e_s * 1e3:.1f}ms out={record.output_tokens}"
    return f"alert {record.model} {record.message}"


class FileExporters:
    """Factory for the built-in file and terminal schemes."""

    schemes: tuple[str, ...] = ("jsonl", "console")

    def create(self, spec: ExportSpec) -> Exporter:
        if spec.scheme == "jsonl":
            return JsonlExporter(spec)
        return ConsoleExporter(spec)
