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
) -> list[TraceRequest]:
    """The first `requests` rows, arrivals squeezed into `duration_s`, lengths divided and capped."""
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
    t0 = rows[0][0]
    span = max((rows[-1][0] - t0).total_seconds(), 1e-9)
    scale = duration_s / span if len(rows) > 1 else 0.0
    return [
        TraceRequest(
            at_s=(stamp - t0).total_seconds() * scale,
            input_tokens=max(4, min(max_input, context // length_divisor)),
            output_tokens=max(2, min(max_output, generated // length_divisor)),
        )
        for stamp, context, generated in rows
    ]
