"""`prism diagnose --normal A --abnormal B`: ranked (stage, resource) suspects with their evidence."""

from __future__ import annotations

import argparse

from rich.table import Table

from prism_core.cli.output import console, print_json
from prism_core.diagnose import diagnose, load_evidence


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("diagnose", help="ranked (stage, resource) suspects between a normal and an abnormal window")
    p.add_argument("--normal", nargs="+", required=True, metavar="FILE", help="JSONL: batch records and telemetry")
    p.add_argument("--abnormal", nargs="+", required=True, metavar="FILE", help="JSONL: batch records and telemetry")
    p.add_argument("--top", type=int, default=3, help="suspects to show (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_diagnose)


def cmd_diagnose(args: argparse.Namespace) -> int:
    result = diagnose(load_evidence(args.normal), load_evidence(args.abnormal), top=max(1, args.top))
    if args.json:
        print_json(result.to_dict())
        return 0
    console.print(
        f"{result.batches_normal} normal batches ({result.mean_ms_normal:.2f} ms mean) vs {result.batches_abnormal} "
        f"abnormal ({result.mean_ms_abnormal:.2f} ms mean)"
    )
    table = Table("#", "stage", "resource", "score", "significant", "evidence", title="Suspects")
    for i, s in enumerate(result.suspects, 1):
        table.add_row(str(i), s.where, s.resource, f"{s.score:.3g}", "yes" if s.significant else "no", s.summary())
    console.print(table)
    if not result.suspects:
        console.print("no stage got slower: nothing to blame")
    return 0
