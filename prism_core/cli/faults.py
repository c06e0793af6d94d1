"""`prism faults list|run|synth`: the anomaly simulation toolkit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.table import Table

from prism_core.cli.output import console, print_json
from prism_core.errors import UsageError
from prism_core.faults.base import check_intensity
from prism_core.faults.runner import run_fault
from prism_core.faults.timeline import FaultTimeline
from prism_core.plugins import host


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("faults", help="anomaly simulation toolkit: list, run, make labelled sets")
    fsub = p.add_subparsers(dest="faults_command", metavar="WHAT", parser_class=type(p))
    fsub.required = True

    ls = fsub.add_parser("list", help="fault injectors the plugins contribute")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)

    run = fsub.add_parser("run", help="run one fault for a while, recording its onset and end")
    run.add_argument("name", help="fault name, e.g. cpu.compute_squeeze (see `prism faults list`)")
    run.add_argument("--duration", type=float, default=10.0, metavar="S", help="seconds (default 10)")
    run.add_argument("--intensity", type=float, default=0.5, metavar="X", help="in (0, 1] (default 0.5)")
    run.add_argument("--timeline", metavar="FILE", help="append the ground truth (JSONL) to this file")
    run.add_argument("--json", action="store_true", help="print the fault event as JSON")
    run.set_defaults(func=cmd_run)

    syn = fsub.add_parser(
        "synth", help="labelled eval set from real normal records: hold out jobs, inject documented latency faults"
    )
    syn.add_argument("--records", required=True, metavar="FILE", help="LatencyPrism vLLM-layout CSV of normal batches")
    syn.add_argument("--out", required=True, metavar="DIR", help="writes train.csv, eval.csv, faults.json here")
    syn.add_argument("--seed", type=int, default=0, help="seed of the job hold-out and fault placement")
    syn.add_argument("--json", action="store_true", help="print the summary as JSON")
    syn.set_defaults(func=cmd_synth)


def cmd_list(args: argparse.Namespace) -> int:
    faults = host().fault_injectors()
    rows = [{"name": n, "resource": f.resource, "description": f.description} for n, f in sorted(faults.items())]
    if args.json:
        print_json(rows)
        return 0
    table = Table("fault", "resource", "what it does", title="Fault injectors")
    for r in rows:
        table.add_row(r["name"], r["resource"], r["description"])
    console.print(table)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    check_intensity(args.intensity)
    if args.duration <= 0:
        raise UsageError(f"--duration must be positive, got {args.duration}")
    faults = host().fault_injectors()
    if args.name not in faults:
        raise UsageError(f"no fault {args.name!r} (known: {', '.join(sorted(faults)) or 'none'})")
    timeline = None
    if args.timeline:
        path = Path(args.timeline)
        if not path.parent.is_dir():
            raise UsageError(f"folder {path.parent} for --timeline does not exist")
        timeline = FaultTimeline(path)
    if not args.json:
        sys.stderr.write(f"{args.name} at intensity {args.intensity} for {args.duration:g} s (Ctrl-C stops it)\n")
    event = run_fault(faults[args.name], args.duration, args.intensity, timeline=timeline)
    if args.json:
        print_json(event)
    else:
        console.print(f"{event.name}: onset {event.onset_ns} ns, end {event.end_ns} ns, {event.params or ''}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from prism_core.detect.table import read_table
    from prism_core.faults.synthetic import write_labelled

    summary = write_labelled(read_table(args.records, "latencyprism"), Path(args.out), seed=args.seed)
    if args.json:
        print_json(summary)
        return 0
    console.print(
        f"{summary['train_rows']} train rows, {summary['eval_rows']} eval rows ({summary['abnormal_rows']} abnormal, "
        f"{len(summary['faults'])} injected faults) in {args.out}"
    )
    return 0
