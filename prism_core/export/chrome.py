"""chrome:PATH — a Chrome trace (JSON array form) that Perfetto and chrome://tracing open.

One track per stage (a slice per batch on each), one 'batch' track, and requests as async slices. Events are
appended as records arrive, so memory stays flat however long the program runs; the closing bracket is written
at close (both viewers also accept a trace cut short without it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from prism_core.capture.stages import CANONICAL_STAGES
from prism_core.errors import UsageError
from prism_core.export.base import Exporter, ExportSpec
from prism_core.models import BatchRecord, Record, RequestRecord

BATCH_TRACK = 1
REQUEST_CATEGORY = "request"


class ChromeTraceExporter:
    def __init__(self, spec: ExportSpec) -> None:
        if not spec.target:
            raise UsageError("chrome export needs a path: 'chrome:PATH'")
        path = Path(spec.target)
        if path.is_dir() or not path.parent.is_dir():
            raise UsageError(f"chrome export path {path} is a folder or its folder does not exist")
        self.spec = spec
        self._file: TextIO | None = path.open("w", encoding="utf-8")
        self._pid = os.getpid()
        self._tracks: dict[str, int] = {}
        self._first = True
        self._next_request = 0
        self._write([self._meta("process_name", 0, "prism"), self._meta("thread_name", BATCH_TRACK, "batch")])

    def _meta(self, kind: str, tid: int, name: str) -> dict[str, Any]:
        return {"ph": "M", "name": kind, "pid": self._pid, "tid": tid, "args": {"name": name}}

    def _track(self, stage: str, out: list[dict[str, Any]]) -> int:
        tid = self._tracks.get(stage)
        if tid is None:
            order = CANONICAL_STAGES.index(stage) if stage in CANONICAL_STAGES else len(CANONICAL_STAGES)
            tid = self._tracks[stage] = 10 + order * 100 + len(self._tracks)
            out.append(self._meta("thread_name", tid, stage))
            out.append(
                {"ph": "M", "name": "thread_sort_index", "pid": self._pid, "tid": tid, "args": {"sort_index": tid}}
            )
        return tid

    def export(self, records: Sequence[Record]) -> None:
        out: list[dict[str, Any]] = []
        for r in records:
            if isinstance(r, BatchRecord):
                label = f"{r.mode} bs={r.batch_size}"
                args = {
                    "model": r.model,
                    "kv_tokens": r.kv_tokens,
                    "prefill": r.prefill_tokens,
                    "decode": r.decode_tokens,
                }
                out.append(self._slice(label, BATCH_TRACK, r.start_ns, r.duration_ns, args))
                at = r.start_ns
                for stage, timing in r.stages.items():
                    tid = self._track(stage, out)
                    out.append(self._slice(label, tid, at, timing.wall_ns, {"device_ns": timing.device_ns}))
                    at += timing.wall_ns
            elif isinstance(r, RequestRecord):
                self._next_request += 1
                common = {"cat": REQUEST_CATEGORY, "name": f"request {r.model}", "pid": self._pid, "tid": 0}
                common["id"] = self._next_request
                end_ns = r.arrival_ns + int(r.e2e_s * 1e9)
                args = {"ttft_s": r.ttft_s, "tpot_s": r.tpot_s, "in": r.input_tokens, "out": r.output_tokens}
                out.append({**common, "ph": "b", "ts": r.arrival_ns / 1e3, "args": args})
                out.append({**common, "ph": "e", "ts": end_ns / 1e3})
        self._write(out)

    def _slice(self, name: str, tid: int, start_ns: int, dur_ns: int, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ph": "X",
            "name": name,
            "pid": self._pid,
            "tid": tid,
            "ts": start_ns / 1e3,
            "dur": dur_ns / 1e3,
            "args": args,
        }

    def _write(self, events: list[dict[str, Any]]) -> None:
        if self._file is None:
            raise RuntimeError(f"{self.spec} is closed")
        if not events:
            return
        text = ",\n".join(json.dumps(e, separators=(",", ":")) for e in events)
        self._file.write(("[\n" if self._first else ",\n") + text)
        self._first = False

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.write("\n]\n")
            self._file.close()
            self._file = None


class ChromeExporters:
    schemes: tuple[str, ...] = ("chrome",)

    def create(self, spec: ExportSpec) -> Exporter:
        return ChromeTraceExporter(spec)
