"""`prism top SOURCE`: a live per-stage breakdown of a running capture.

SOURCE is `jsonl:PATH` (follows the file `prism run --export jsonl:PATH` appends to) or `otlp+grpc://HOST:PORT`
(listens there as an OTLP/gRPC receiver for `prism run --export otlp+grpc://HOST:PORT`).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError
from rich.live import Live

from prism_core.capture.live import LiveStats
from prism_core.cli.output import console
from prism_core.errors import UsageError
from prism_core.export import ExportSpec
from prism_core.export.files import RECORD
from prism_core.models import Record

QUIET_S = 2.0  # --once on a receiver: print once records came and then none for this long


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("top", help="live per-stage breakdown in the terminal")
    p.add_argument(
        "source",
        help="jsonl:PATH written by `prism run --export jsonl:PATH` (or a plain path), or otlp+grpc://HOST:PORT to "
        "listen on for `prism run --export otlp+grpc://HOST:PORT`",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="print one view and exit (no TTY needed): a file as it is now; a receiver once records came and then "
        f"none for {QUIET_S:g} s, or at --timeout",
    )
    p.add_argument("--interval", type=float, default=1.0, help="refresh period in seconds (default 1)")
    p.add_argument("--timeout", type=float, default=60.0, help="--once on a receiver: wait at most this long (60)")
    p.set_defaults(func=cmd_top)


def _path(spec: ExportSpec) -> Path:
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
            records.append(RECORD.validate_json(line))
        except ValidationError:
            continue  # a line of another kind (alerts from a newer writer): not ours to show
    stats.add(records)
    return len(records)


def cmd_top(args: argparse.Namespace) -> int:
    source = args.source
    spec = ExportSpec.parse(source) if ":" in source else ExportSpec("jsonl", source)
    once = args.once or not sys.stdout.isatty()
    if spec.scheme == "jsonl":
        return _top_file(_path(spec), once=once, interval=args.interval)
    if spec.scheme == "otlp+grpc":
        return _top_receiver(spec, once=once, interval=args.interval, timeout=args.timeout)
    raise UsageError(f"prism top reads jsonl:PATH or listens on otlp+grpc://HOST:PORT, not {spec.scheme!r}")


def _top_file(path: Path, *, once: bool, interval: float) -> int:
    stats = LiveStats()
    title = f"prism top {path}"
    with path.open(encoding="utf-8") as stream:
        read_new(stream, stats)
        if once:
            console.print(stats.render(title))
            return 0
        with Live(stats.render(title), console=console, refresh_per_second=4) as live:
            while True:
                time.sleep(interval)
                read_new(stream, stats)
                live.update(stats.render(title))


def _top_receiver(spec: ExportSpec, *, once: bool, interval: float, timeout: float) -> int:
    from prism_core.export.otel import endpoint_address
    from prism_core.export.readback import SpanRecords
    from prism_core.export.receiver import OtlpReceiver

    address = endpoint_address(spec)
    assert address is not None  # otlp+grpc always names HOST:PORT (checked by endpoint_address)
    stats = LiveStats()
    last = [0.0]  # monotonic time of the last records
    lock = threading.Lock()

    def sink(records: list[Record]) -> None:
        stats.add(records)
        with lock:
            last[0] = time.monotonic()

    try:
        receiver = OtlpReceiver(address[1], host=address[0], keep_spans=False, on_spans=SpanRecords(sink))
    except (OSError, RuntimeError) as exc:
        raise UsageError(f"cannot listen on {address[0]}:{address[1]} ({exc}); is another receiver there?") from exc
    title = f"prism top {spec.scheme}://{spec.target}"
    with receiver:
        if once:
            console.print(f"listening on {receiver.address}", style="dim")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                time.sleep(0.2)
                with lock:
                    if last[0] and time.monotonic() - last[0] >= QUIET_S:
                        break
            console.print(stats.render(title))
            return 0 if stats.total_batches or stats.total_requests else 1
        with Live(stats.render(f"{title} (listening)"), console=console, refresh_per_second=4) as live:
            while True:
                time.sleep(interval)
                live.update(stats.render(title))
