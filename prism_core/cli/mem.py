"""`prism mem ls|limit|watch`: the per-device memory brokers (what kvcached's kvctl/kvtop do, plus priorities,
guarantees and dead-process recovery)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from rich.live import Live
from rich.table import Table

from prism_core.cli.output import console, print_json
from prism_core.errors import UsageError
from prism_core.memory import Broker, LedgerInfo
from prism_core.memory.broker import broker_dir, ledger_path

_UNITS = {"": 1, "b": 1, "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30, "gib": 2**30, "t": 2**40}
_UNITS |= {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tib": 2**40, "tb": 10**12}


def parse_size(text: str) -> int:
    """'512MiB', '2G', '1.5gib', '4096' -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"size {text!r}: expected a number with an optional unit (B, KiB, MiB, GiB, TiB, KB, ...)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mem = sub.add_parser("mem", help="the per-device memory broker: models, budgets, reclaim")
    verbs = mem.add_subparsers(dest="verb", metavar="VERB", parser_class=type(mem))
    verbs.required = True

    ls = verbs.add_parser("ls", help="each device's ledger: capacity, and per model min/max/priority/held")
    ls.add_argument("--device", help="only this device (default: every ledger on this host)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_ls)

    limit = verbs.add_parser("limit", help="change a model's min, max or priority, or a device's capacity")
    limit.add_argument("model", nargs="?", help="model name (omit with --capacity)")
    limit.add_argument("--device", default="cpu:0", help="device id (default cpu:0)")
    limit.add_argument("--min", type=parse_size, help="guaranteed bytes, e.g. 2GiB")
    limit.add_argument("--max", type=parse_size, help="cap in bytes; lowering it makes the model give back lazily")
    limit.add_argument("--priority", type=int, help="higher wins")
    limit.add_argument("--capacity", type=parse_size, help="the device budget all models share")
    limit.add_argument("--json", action="store_true", help="print JSON")
    limit.set_defaults(func=cmd_limit)

    watch = verbs.add_parser("watch", help="the ledgers, refreshed live")
    watch.add_argument("--device", help="only this device")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    watch.add_argument("--count", type=int, help="stop after this many refreshes")
    watch.add_argument("--json", action="store_true", help="one JSON document per line per refresh")
    watch.set_defaults(func=cmd_watch)


def _ledgers(device: str | None) -> list[LedgerInfo]:
    paths = [ledger_path(device)] if device else sorted(broker_dir().glob("prism-broker-*.ledger"))
    out = []
    for path in paths:
        broker = Broker.open_existing(Path(path))
        try:
            out.append(broker.info())
        finally:
            broker.close()
    return out


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f}"


def _table(ledgers: list[LedgerInfo]) -> Table:
    table = Table("device", "model", "pid", "prio", "min MiB", "max MiB", "held MiB", "reclaim MiB", "refusals")
    for led in ledgers:
        summary = f"capacity {_mib(led.capacity_bytes)} MiB, free {_mib(led.free_bytes)} MiB"
        table.add_row(led.device, f"[dim]{summary}[/]", "", "", "", "", _mib(led.used_bytes), "", "")
        for m in led.models:
            table.add_row(
                "",
                m.name,
                str(m.pid),
                str(m.priority),
                _mib(m.min_bytes),
                _mib(m.max_bytes),
                _mib(m.held_bytes),
                _mib(m.reclaim_bytes),
                str(m.refusals),
            )
    return table


def cmd_ls(args: argparse.Namespace) -> int:
    ledgers = _ledgers(args.device)
    if args.json:
        print_json({"ledgers": ledgers})
        return 0
    if not ledgers:
        console.print(f"no broker ledgers in {broker_dir()} (they appear when a model registers)")
        return 0
    console.print(_table(ledgers))
    return 0


def cmd_limit(args: argparse.Namespace) -> int:
    broker = Broker.open_existing(ledger_path(args.device))
    try:
        if args.capacity is not None:
            broker.set_capacity(args.capacity)
        if args.model:
            if args.min is None and args.max is None and args.priority is None:
                raise UsageError("give at least one of --min, --max, --priority")
            broker.set_limit(args.model, min_bytes=args.min, max_bytes=args.max, priority=args.priority)
        elif args.capacity is None:
            raise UsageError("name a model (with --min/--max/--priority) or give --capacity")
        info = broker.info()
    finally:
        broker.close()
    if args.json:
        print_json(info)
    else:
        console.print(_table([info]))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise UsageError(f"--interval must be positive, got {args.interval}")
    n = 0
    if args.json:
        while args.count is None or n < args.count:
            ledgers = [led.model_dump(mode="json") for led in _ledgers(args.device)]
            sys.stdout.write(json.dumps({"time": time.time(), "ledgers": ledgers}) + "\n")
            sys.stdout.flush()
            n += 1
            if args.count is None or n < args.count:
                time.sleep(args.interval)
        return 0
    with Live(_table(_ledgers(args.device)), console=console, auto_refresh=False) as live:
        while args.count is None or n < args.count:
            live.update(_table(_ledgers(args.device)), refresh=True)
            n += 1
            if args.count is None or n < args.count:
                time.sleep(args.interval)
    return 0
