"""What diagnosis reads: batch records with stage timings, and telemetry samples, from JSONL files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from prism_core.detect.table import batch_records, iter_jsonl
from prism_core.errors import UsageError
from prism_core.models import BatchRecord, TelemetrySample


@dataclass(frozen=True, slots=True)
class Evidence:
    """One side of a comparison (normal or abnormal): its batches and the telemetry around them."""

    batches: tuple[BatchRecord, ...]
    telemetry: tuple[TelemetrySample, ...]
    source: str = ""


def load_evidence(paths: Sequence[str | Path]) -> Evidence:
    """Read batch records (`"kind": "batch"`) and telemetry samples (objects with `ts_ns` and `values`) from
    JSONL files; other record kinds are skipped. A side without batches that carry stages is a UsageError."""
    batches: list[BatchRecord] = []
    telemetry: list[TelemetrySample] = []
    for raw in paths:
        p = Path(raw)
        if not p.is_file():
            raise UsageError(f"{p} does not exist")
        batches.extend(r for r, _, _ in batch_records(p))
        for n, obj in iter_jsonl(p):
            if "kind" in obj or "values" not in obj:
                continue
            try:
                telemetry.append(TelemetrySample.model_validate(obj))
            except ValidationError as exc:
                raise UsageError(f"{p} line {n}: bad telemetry sample ({exc.errors()[0]['msg']})") from None
    names = ", ".join(str(p) for p in paths)
    if not batches:
        raise UsageError(f'{names}: no batch records (lines with "kind": "batch")')
    if not any(b.stages for b in batches):
        raise UsageError(f"{names}: the batch records carry no stage timings; diagnosis ranks stages")
    return Evidence(tuple(batches), tuple(sorted(telemetry, key=lambda s: s.ts_ns)), names)


def evidence_of(batches: Iterable[BatchRecord], telemetry: Iterable[TelemetrySample], source: str = "") -> Evidence:
    return Evidence(tuple(batches), tuple(sorted(telemetry, key=lambda s: s.ts_ns)), source)
