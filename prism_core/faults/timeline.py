"""Ground truth of a fault run: when each fault began and ended, appended to a JSONL timeline file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from prism_core.models import Frozen

TIMELINE_VERSION = 1


class FaultEvent(Frozen):
    """One fault's active interval, in wall-clock ns (time.time_ns(), the clock BatchRecord.start_ns uses)."""

    kind: str = "fault"
    schema_version: int = TIMELINE_VERSION
    name: str
    resource: str
    intensity: float = Field(gt=0, le=1)
    onset_ns: int
    end_ns: int
    params: dict[str, str] = Field(default_factory=dict)

    def covers(self, ts_ns: int) -> bool:
        return self.onset_ns <= ts_ns < self.end_ns

    def overlaps(self, start_ns: int, end_ns: int) -> bool:
        return start_ns < self.end_ns and self.onset_ns < end_ns


class FaultTimeline:
    """Appends one JSON line per finished fault; each line is written with one call, whole or not at all."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.events: list[FaultEvent] = []

    def record(self, event: FaultEvent) -> None:
        self.events.append(event)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(event.model_dump_json() + "\n")

    @staticmethod
    def read(path: str | Path) -> list[FaultEvent]:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [FaultEvent.model_validate_json(line) for line in lines if line.strip()]


def label_at(events: list[FaultEvent], ts_ns: int, end_ns: int | None = None) -> int:
    """1 if any fault was active at `ts_ns` or, given the batch's end, at any time in [ts_ns, end_ns), else 0."""
    if end_ns is None:
        return int(any(e.covers(ts_ns) for e in events))
    return int(any(e.overlaps(ts_ns, end_ns) for e in events))
