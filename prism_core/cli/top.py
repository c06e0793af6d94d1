"""`prism top [jsonl:PATH]`: a live per-stage breakdown of a running capture, read from its JSONL export."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from pydantic import TypeAdapter, ValidationError
from rich.live import Live

from prism_core.capture.live import LiveStats
from prism_core.cli.output import console
from prism_core.errors import UsageError
from prism_core.export import ExportSpec
from prism_core.models import Record

_RECORD: TypeAdapter[Record] = TypeAdapter(Record)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("top", help="live per-stage breakdown in the terminal")
    p.add_argument("source", help="jsonl:PATH written by `prism run --export jsonl:PATH` (or a plain path)")
    p.add_argument("--once", action="store_true", help="read what is there, print one view, exit (no TTY needed)")
    p.add_argument("--interval", type=float, default=1.0, help="refresh period in seconds (default 1)")
    p.set_defaults(func=cmd_top)


def _path(source: str) -> Path:
    spec = ExportSpec.parse(source) if ":" in source else ExportSpec("jsonl", source)
    if spec.scheme != "jsonl":
        raise UsageError(f"prism top reads jsonl:PATH; {spec.scheme!r} sources are not supported yet")
    path = Path(spec.target)
    if not path.is_file():
        raise UsageError(f"{path} does not exist (start `prism run --export jsonl:{path} -- ...` first)")
    return path


def read_new(stream: TextIO, stats: LiveStats) -> int:
    """Add every whole line appended since the last call; a partial last line waits for the next call."""
    records = []
    while True:
        pos = stream.tell()
        line = stream.readline()
        if not line.endswith("\n"):
            stream.seek(pos)
            break
        try:
            records.append(_RECORD.validate_json(line))
        except ValidationError:
            continue  # a line of another kind (alerts from a newer writer): not ours to show
    stats.add(records)
    return len(records)


def cmd_top(args: argparse.Namespace) -> int:
    path = _path(args.source)
    stats = LiveStats()
    with path.open(encoding="utf-8") as stream:
        read_new(stream, stats)
        if args.once or not sys.stdout.isatty():
            console.print(stats.render(f"prism top {path}"))
            return 0
        with Live(stats.render(f"prism top {path}"), console=console, refresh_per_second=4) as live:
            while True:
                time.sleep(args.interval)
                read_new(stream, stats)
                live.update(stats.render(f"prism top {path}"))
