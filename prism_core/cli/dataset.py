"""`prism dataset make`: replay a trace against the real transformers engine under scheduled CPU faults."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from prism_core.cli.output import console, print_json
from prism_core.errors import UsageError
from prism_core.settings import data_dir


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dataset", help="make labelled batch-record sets from the real engine under faults")
    dsub = p.add_subparsers(dest="dataset_command", metavar="WHAT", parser_class=type(p))
    dsub.required = True
    mk = dsub.add_parser("make", help="replay a trace on the tiny transformers engine, inject faults, label batches")
    mk.add_argument(
        "--trace", type=Path, default=data_dir() / "azure_llm_2023_code.csv", help="Azure LLM 2023 trace CSV"
    )
    mk.add_argument(
        "--faults", required=True, help="'cpu' (every CPU fault) or NAME[:INTENSITY],... (see `prism faults list`)"
    )
    mk.add_argument("--intensities", default="0.5,1.0", help="for faults given without one (default 0.5,1.0)")
    mk.add_argument(
        "--out", required=True, type=Path, help="new folder: batches.jsonl/.csv, faults.jsonl, telemetry.jsonl"
    )
    mk.add_argument("--lead", type=float, default=30.0, metavar="S", help="normal seconds before the first fault")
    mk.add_argument("--fault-s", type=float, default=6.0, metavar="S", help="seconds each fault runs (default 6)")
    mk.add_argument("--gap", type=float, default=6.0, metavar="S", help="normal seconds between faults (default 6)")
    mk.add_argument("--tail", type=float, default=4.0, metavar="S", help="normal seconds after the last fault")
    mk.add_argument("--rate", type=float, default=2.0, help="requests per second replayed (default 2)")
    mk.add_argument(
        "--model",
        choices=("tiny", "smollm2"),
        default="tiny",
        help="engine model, as `prism demo --model` (default tiny)",
    )
    mk.add_argument(
        "--threads",
        type=int,
        help="the engine's torch intra-op threads (default 1: the other cores stay free for the host's own work)",
    )
    mk.add_argument("--json", action="store_true", help="print the summary as JSON")
    mk.set_defaults(func=cmd_make)


def cmd_make(args: argparse.Namespace) -> int:
    from prism_core.demo.dataset import Plan, make_dataset, parse_faults
    from prism_core.plugins import host

    for name in ("lead", "fault_s", "gap", "tail", "rate"):
        if getattr(args, name) < 0 or (name in ("fault_s", "rate") and getattr(args, name) == 0):
            raise UsageError(f"--{name.replace('_', '-')} must be positive")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    try:
        levels = [float(x) for x in args.intensities.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--intensities {args.intensities!r}: expected numbers in (0, 1], comma-separated") from None
    faults = parse_faults(args.faults, levels, sorted(host().fault_injectors()))
    plan = Plan(lead_s=args.lead, fault_s=args.fault_s, gap_s=args.gap, tail_s=args.tail, faults=faults)
    if not args.json:
        console.print(f"prism dataset make: {len(faults)} faults, about {plan.total_s:.0f} s of replay")
    # SIGTERM ends the run through SystemExit, so the running fault is stopped and the temporary folder removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    meta = make_dataset(
        args.trace, args.out, plan, requests_per_s=args.rate, model_choice=args.model, threads=args.threads
    )
    if args.json:
        print_json(meta)
    else:
        console.print(
            f"{meta['batches']} batches ({meta['abnormal']} abnormal, {meta['decode']} decode), "
            f"{meta['faults_run']} faults; wrote {args.out}"
        )
    return 0
