"""Replay of the Azure LLM inference trace (2023, conversation): arrival times and token counts, scaled down.

The trace's prompts (hundreds to thousands of tokens) and arrival rate are far beyond a 2-core CPU running a
model, so arrivals are compressed to a target duration and lengths are divided and capped; the shape of the
workload (bursts, the spread of lengths) is what is kept.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from prism_core.errors import UsageError


@dataclass(frozen=True, slots=True)
class TraceRequest:
    at_s: float  # arrival, seconds from the replay's start
    input_tokens: int
    output_tokens: int


def load_trace(
    path: Path,
    *,
    requests: int,
    duration_s: float,
    length_divisor: int = 8,
    max_input: int = 256,
    max_output: int = 48,
    output_divisor: int | None = None,
    max_gap_s: float | None = None,
) -> list[TraceRequest]:
    """The first `requests` rows, arrivals squeezed into `duration_s`, lengths divided and capped (outputs by
    `output_divisor` when given: the code trace's outputs are short, so dividing them like prompts leaves none).

    `max_gap_s` shortens idle gaps between arrivals longer than that (in trace seconds) to that, so a replay of
    a bursty stretch keeps the engine busy instead of spending most of its time on one long pause."""
    out_div = output_divisor or length_divisor
    if not path.is_file():
        raise UsageError(f"trace {path} not found (the Azure LLM 2023 conversation CSV; pass --trace PATH)")
    rows = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            stamp = datetime.fromisoformat(row["TIMESTAMP"].strip()[:26])
            rows.append((stamp, int(row["ContextTokens"]), int(row["GeneratedTokens"])))
            if len(rows) >= requests:
                break
    if not rows:
        raise UsageError(f"trace {path} has no rows")
    offsets, at = [], 0.0
    for prev, cur in zip([rows[0], *rows], rows, strict=False):
        gap = (cur[0] - prev[0]).total_seconds()
        at += min(gap, max_gap_s) if max_gap_s is not None else gap
        offsets.append(at)
    span = max(offsets[-1], 1e-9)
    scale = duration_s / span if len(rows) > 1 else 0.0
    return [
        TraceRequest(
            at_s=offset * scale,
            input_tokens=max(4, min(max_input, context // length_divisor)),
            output_tokens=max(2, min(max_output, generated // out_div)),
        )
        for offset, (_, context, generated) in zip(offsets, rows, strict=True)
    ]
