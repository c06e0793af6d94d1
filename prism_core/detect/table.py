"""Batch workload tables: one row per batch iteration, read from Prism records or LatencyPrism's CSVs.

Columns are numpy arrays so fitting and evaluation run vectorised; the online path never builds a table.
Every reader validates what it reads and raises `UsageError` with one line saying what was wrong.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from prism_core.errors import UsageError
from prism_core.models import BatchRecord

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Format = Literal["prism", "latencyprism"]
FORMATS: tuple[str, ...] = ("prism", "latencyprism")

# Forward-mode codes, as LatencyPrism's SGLang export writes them (1 = prefill/extend, 2 = decode); 3 = mixed.
PREFILL, DECODE, MIXED = 1, 2, 3
MODE_CODES: dict[str, int] = {"prefill": PREFILL, "decode": DECODE, "mixed": MIXED}

VLLM_COLUMNS = (
    "job_name",
    "start_ts",
    "duration_us",
    "batch_size",
    "avg_input_length",
    "max_input_length",
    "avg_output_length",
    "max_output_length",
)
SGLANG_COLUMNS = (
    "duration_us",
    "compute_batch_size",
    "compute_avg_input_length",
    "compute_max_input_length",
    "compute_avg_output_length",
    "compute_max_output_length",
    "compute_forward_mode",
    "job_name",
    "start_ts",
)
# A flat CSV of BatchRecords (what `prism dataset make` writes next to its JSONL).
PRISM_CSV_COLUMNS = (
    "start_ns",
    "duration_ns",
    "mode",
    "batch_size",
    "avg_input_len",
    "max_input_len",
    "avg_output_len",
    "max_output_len",
)


@dataclass(frozen=True, slots=True)
class WorkloadTable:
    """Per-batch workload and latency. `group` names the workload (LatencyPrism's job) for whole-job hold-outs."""

    duration_us: Floats
    mode: Ints
    batch_size: Floats
    avg_input: Floats
    max_input: Floats
    avg_output: Floats
    max_output: Floats
    prefill_tokens: Floats
    start_us: Floats
    group: npt.NDArray[np.str_]
    label: Ints | None = None
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.duration_us)

    def take(self, index: npt.NDArray[np.bool_] | Ints) -> WorkloadTable:
        """The rows selected by a boolean mask or an index array, in that order."""
        return WorkloadTable(
            duration_us=self.duration_us[index],
            mode=self.mode[index],
            batch_size=self.batch_size[index],
            avg_input=self.avg_input[index],
            max_input=self.max_input[index],
            avg_output=self.avg_output[index],
            max_output=self.max_output[index],
            prefill_tokens=self.prefill_tokens[index],
            start_us=self.start_us[index],
            group=self.group[index],
            label=None if self.label is None else self.label[index],
            source=self.source,
            meta=dict(self.meta),
        )

    def has_groups(self) -> bool:
        return len(np.unique(self.group)) > 1


def read_table(path: str | Path, fmt: Format = "prism") -> WorkloadTable:
    """Read a record file: LatencyPrism CSV (either layout, detected by header) or Prism JSONL/CSV."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"records file {p} does not exist")
    if fmt == "latencyprism":
        return _read_latencyprism(p)
    if fmt == "prism":
        return _read_prism_jsonl(p) if p.suffix in (".jsonl", ".json") else _read_prism_csv(p)
    raise UsageError(f"unknown record format {fmt!r} (known: {', '.join(FORMATS)})")


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    if not header:
        raise UsageError(f"{path} is empty: expected a CSV header and rows")
    if not rows:
        raise UsageError(f"{path} has a header but no rows")
    return header, rows


def _require(path: Path, header: Sequence[str], needed: Sequence[str], layout: str) -> None:
    missing = [c for c in needed if c not in header]
    if missing:
        raise UsageError(f"{path} ({layout} layout) lacks column(s) {', '.join(missing)}")


def _floats(path: Path, rows: Sequence[dict[str, str]], col: str) -> Floats:
    out = np.empty(len(rows), dtype=np.float64)
    for i, r in enumerate(rows):
        try:
            out[i] = float(r[col])
        except (TypeError, ValueError):
            raise UsageError(f"{path} row {i + 2}: column {col} is {r[col]!r}, not a number") from None
    return out


def _labels(path: Path, rows: Sequence[dict[str, str]], header: Sequence[str]) -> Ints | None:
    if "label" not in header:
        return None
    lab = _floats(path, rows, "label")
    bad = np.flatnonzero((lab != 0) & (lab != 1))
    if len(bad):
        raise UsageError(f"{path} row {bad[0] + 2}: label must be 0 or 1, got {lab[bad[0]]}")
    return lab.astype(np.int64)


def _read_latencyprism(path: Path) -> WorkloadTable:
    header, rows = _csv_rows(path)
    if "compute_batch_size" in header:
        _require(path, header, SGLANG_COLUMNS, "LatencyPrism SGLang")
        prefix, layout = "compute_", "sglang"
        mode = _floats(path, rows, "compute_forward_mode").astype(np.int64)
        bad = np.flatnonzero((mode != PREFILL) & (mode != DECODE))
        if len(bad):
            raise UsageError(f"{path} row {bad[0] + 2}: compute_forward_mode must be 1 (prefill) or 2 (decode)")
    else:
        _require(path, header, VLLM_COLUMNS, "LatencyPrism vLLM")
        prefix, layout = "", "vllm"
        mode = np.full(len(rows), DECODE, dtype=np.int64)  # the vLLM export holds decode iterations only
    bs = _floats(path, rows, f"{prefix}batch_size")
    avg_in = _floats(path, rows, f"{prefix}avg_input_length")
    table = WorkloadTable(
        duration_us=_floats(path, rows, "duration_us"),
        mode=mode,
        batch_size=bs,
        avg_input=avg_in,
        max_input=_floats(path, rows, f"{prefix}max_input_length"),
        avg_output=_floats(path, rows, f"{prefix}avg_output_length"),
        max_output=_floats(path, rows, f"{prefix}max_output_length"),
        prefill_tokens=np.where(mode == PREFILL, bs * avg_in, 0.0),
        start_us=_floats(path, rows, "start_ts"),
        group=np.array([r["job_name"] for r in rows], dtype=np.str_),
        label=_labels(path, rows, header),
        source=str(path),
        meta={"format": "latencyprism", "layout": layout},
    )
    validate(table, path)
    return table


def _read_prism_csv(path: Path) -> WorkloadTable:
    header, rows = _csv_rows(path)
    _require(path, header, PRISM_CSV_COLUMNS, "Prism CSV")
    modes = [r["mode"] for r in rows]
    for i, m in enumerate(modes):
        if m not in MODE_CODES:
            raise UsageError(f"{path} row {i + 2}: mode must be prefill, decode or mixed, got {m!r}")
    mode = np.array([MODE_CODES[m] for m in modes], dtype=np.int64)
    bs = _floats(path, rows, "batch_size")
    avg_in = _floats(path, rows, "avg_input_len")
    prefill = _floats(path, rows, "prefill_tokens") if "prefill_tokens" in header else None
    table = WorkloadTable(
        duration_us=_floats(path, rows, "duration_ns") / 1e3,
        mode=mode,
        batch_size=bs,
        avg_input=avg_in,
        max_input=_floats(path, rows, "max_input_len"),
        avg_output=_floats(path, rows, "avg_output_len"),
        max_output=_floats(path, rows, "max_output_len"),
        prefill_tokens=prefill if prefill is not None else np.where(mode != DECODE, bs * avg_in, 0.0),
        start_us=_floats(path, rows, "start_ns") / 1e3,
        group=np.array([r.get("job") or r.get("model") or "" for r in rows], dtype=np.str_),
        label=_labels(path, rows, header),
        source=str(path),
        meta={"format": "prism", "layout": "csv"},
    )
    validate(table, path)
    return table


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a line that is not a JSON object is a UsageError."""
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path} line {n}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise UsageError(f"{path} line {n}: expected a JSON object")
            yield n, obj


def batch_records(path: Path) -> Iterator[tuple[BatchRecord, int | None, str]]:
    """BatchRecords of a JSONL file with the optional `label` (0/1) and `job` keys a labelled set adds."""
    for n, obj in iter_jsonl(path):
        if obj.get("kind") != "batch":
            continue
        label, job = obj.pop("label", None), obj.pop("job", None)
        if label not in (None, 0, 1):
            raise UsageError(f"{path} line {n}: label must be 0 or 1, got {label!r}")
        try:
            rec = BatchRecord.model_validate(obj)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise UsageError(f"{path} line {n}: bad batch record ({where}: {first['msg']})") from None
        yield rec, label, str(job or rec.model)


def _read_prism_jsonl(path: Path) -> WorkloadTable:
    items = list(batch_records(path))
    if not items:
        raise UsageError(f'{path} holds no batch records (lines with "kind": "batch")')
    labels = [lab for _, lab, _ in items]
    if any(lab is None for lab in labels) and any(lab is not None for lab in labels):
        raise UsageError(f"{path}: some batch records have a label and some do not")
    table = from_records([r for r, _, _ in items], groups=[g for _, _, g in items], source=str(path))
    if labels[0] is not None:
        table = _with_label(table, np.array(labels, dtype=np.int64))
    validate(table, path)
    return table


def _with_label(t: WorkloadTable, label: Ints) -> WorkloadTable:
    return WorkloadTable(
        t.duration_us,
        t.mode,
        t.batch_size,
        t.avg_input,
        t.max_input,
        t.avg_output,
        t.max_output,
        t.prefill_tokens,
        t.start_us,
        t.group,
        label,
        t.source,
        dict(t.meta),
    )


def from_records(
    records: Sequence[BatchRecord], *, groups: Iterable[str] | None = None, source: str = ""
) -> WorkloadTable:
    """A table from BatchRecords (warm-up learning and tests use this)."""
    recs = list(records)

    def col(fn: Any) -> Floats:
        return np.array([fn(r) for r in recs], dtype=np.float64)

    return WorkloadTable(
        duration_us=col(lambda r: r.duration_ns / 1e3),
        mode=np.array([MODE_CODES[r.mode] for r in recs], dtype=np.int64),
        batch_size=col(lambda r: r.batch_size),
        avg_input=col(lambda r: r.avg_input_len),
        max_input=col(lambda r: r.max_input_len),
        avg_output=col(lambda r: r.avg_output_len),
        max_output=col(lambda r: r.max_output_len),
        prefill_tokens=col(lambda r: r.prefill_tokens),
        start_us=col(lambda r: r.start_ns / 1e3),
        group=np.array(list(groups) if groups is not None else [r.model for r in recs], dtype=np.str_),
        source=source,
        meta={"format": "prism", "layout": "records"},
    )


def validate(t: WorkloadTable, where: str | Path) -> None:
    """Durations must be finite and positive, workload columns finite and non-negative."""
    if len(t) == 0:
        raise UsageError(f"{where} has no rows")
    for name in ("duration_us", "batch_size", "avg_input", "max_input", "avg_output", "max_output", "start_us"):
        col: Floats = getattr(t, name)
        bad = np.flatnonzero(~np.isfinite(col))
        if len(bad):
            raise UsageError(f"{where}: {name} is not a finite number in data row {bad[0] + 1}")
        if name == "start_us":
            continue
        bad = np.flatnonzero(col <= 0 if name == "duration_us" else col < 0)
        if len(bad):
            v = col[bad[0]]
            what = "durations must be positive" if name == "duration_us" else "must not be negative"
            raise UsageError(f"{where}: {name} = {v:g} in data row {bad[0] + 1}: {what}")
