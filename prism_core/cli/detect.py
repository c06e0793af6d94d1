"""`prism detect fit|eval`: fit a workload->latency model with hold-out figures; score a labelled record set."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from prism_core.cli.output import console, print_json
from prism_core.detect.chart import chart_config
from prism_core.detect.evaluate import evaluate, fit_with_report
from prism_core.detect.model import LatencyModel
from prism_core.detect.table import FORMATS, read_table
from prism_core.errors import UsageError
from prism_core.faults.timeline import FaultEvent, FaultTimeline

REGRESSION_KEYS = ("r2", "mape", "median_ape", "within_10pct", "within_25pct", "rows")
DETECTION_KEYS = ("precision", "recall", "f1", "fpr", "lag", "missed_segments")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("detect", help="fit a latency model; score a labelled record set")
    dsub = p.add_subparsers(dest="detect_command", metavar="WHAT", parser_class=type(p))
    dsub.required = True

    fit = dsub.add_parser("fit", help="fit latency = f(workload); print hold-out accuracy")
    _records_args(fit)
    fit.add_argument("--model", metavar="OUT", help="save the model fitted on every row here (JSON)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the hold-out splits and the fit (default 0)")
    fit.add_argument("--json", action="store_true", help="print JSON")
    fit.set_defaults(func=cmd_fit)

    ev = dsub.add_parser("eval", help="stream a labelled record set through the detector and the baselines")
    ev.add_argument("--model", required=True, metavar="M", help="a model file from `prism detect fit --model`")
    _records_args(ev)
    ev.add_argument("--mode", default="window", help="control chart: window (default) or point")
    ev.add_argument("--window", type=int, default=10, help="W, batches in the rolling mean (default 10)")
    ev.add_argument("--k", type=float, default=3.0, help="threshold = min(mu + k sigma, theta_max); default 3")
    ev.add_argument("--theta-max", type=float, default=0.5, help="cap on the learnt threshold (default 0.5)")
    ev.add_argument("--theta-min", type=float, default=0.15, help="floor under the learnt threshold (default 0.15)")
    ev.add_argument(
        "--run", type=int, default=1, help="alarm after this many batches in a row over the threshold (default 1)"
    )
    ev.add_argument(
        "--recentre",
        type=int,
        default=0,
        metavar="N",
        help="scale predictions by the median latency/prediction of the last N unalarmed batches (default 0: off)",
    )
    ev.add_argument(
        "--lone-ratio",
        type=float,
        default=10.0,
        metavar="X",
        help="with --run > 1, a batch X times its prediction alarms alone (default 10; 0: off)",
    )
    ev.add_argument("--modes", default="decode", help="forward modes to monitor, comma-separated (default decode)")
    ev.add_argument("--faults", metavar="FILE", help="the set's fault timeline (faults.jsonl): adds by_fault")
    ev.add_argument("--json", action="store_true", help="print JSON")
    ev.set_defaults(func=cmd_eval)


def _records_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--records", required=True, metavar="FILE", help="batch records: CSV or JSONL")
    p.add_argument("--format", choices=FORMATS, default="prism", help="prism (default) or latencyprism")


def cmd_fit(args: argparse.Namespace) -> int:
    out = Path(args.model) if args.model else None
    if out is not None and not out.parent.is_dir():
        raise UsageError(f"folder {out.parent} for --model does not exist")
    table = read_table(args.records, args.format)
    skipped = 0
    if table.label is not None:  # a labelled set: the model learns normal latency, so only from label 0
        skipped = int(table.label.sum())
        table = table.take(table.label == 0)
        if not len(table):
            raise UsageError(f"{args.records}: every row is labelled abnormal; nothing normal to fit on")
    model, report = fit_with_report(table, seed=args.seed)
    report["abnormal_rows_skipped"] = skipped
    if out is not None:
        model.save(out)
        report["model"] = str(out)
    if args.json:
        print_json(report)
        return 0
    t = Table("hold-out", *REGRESSION_KEYS, title=f"Latency model on {args.records}")
    t.add_row("random 20% rows", *_cells(report, REGRESSION_KEYS))
    if report["by_job"]:
        t.add_row(f"{report['by_job']['jobs_held_out']} whole jobs", *_cells(report["by_job"], REGRESSION_KEYS))
    console.print(t)
    console.print(f"fitted {report['rows_used']} rows ({report['rows_dropped']} outliers dropped) in "
                  f"{report['fit_seconds']:.2f} s" + (f"; saved {out}" if out else ""))  # fmt: skip
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    chart = chart_config(
        args.mode,
        args.window,
        args.k,
        args.theta_max,
        theta_min=args.theta_min,
        run=args.run,
        recentre=args.recentre,
        lone_ratio=args.lone_ratio,
    )
    modes = frozenset(m.strip() for m in args.modes.split(",") if m.strip())
    if not modes or not modes <= {"prefill", "decode", "mixed"}:
        raise UsageError(f"--modes must name prefill, decode and/or mixed, got {args.modes!r}")
    model = LatencyModel.load(args.model)
    faults = read_faults(args.faults) if args.faults else []
    result = evaluate(model, read_table(args.records, args.format), chart, modes, faults)
    if args.json:
        print_json(result)
        return 0
    t = Table("detector", *DETECTION_KEYS, title=f"Detection on {args.records} (threshold {result['threshold']:.3f})")
    t.add_row(f"prism ({chart.mode}, W={chart.w})", *_cells(result, DETECTION_KEYS))
    for name, r in result["baselines"].items():
        t.add_row(name, *_cells(r, DETECTION_KEYS))
    console.print(t)
    if "by_fault" in result:
        f = Table("fault", "intensity", "batches", "latency ratio", "recall", "lag", title="By fault")
        for r in result["by_fault"]:
            f.add_row(r["fault"], *_cells(r, ("intensity", "batches", "latency_ratio", "recall", "lag")))
        console.print(f)
    return 0


def read_faults(path: str) -> list[FaultEvent]:
    """A fault timeline, or one UsageError line saying what is wrong with it."""
    try:
        faults = FaultTimeline.read(path)
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise UsageError(
            f"{path}: not a fault timeline (JSON lines from `prism dataset make`): {str(exc).splitlines()[0]}"
        ) from None
    if not faults:
        raise UsageError(f"{path}: no faults in it")
    return faults


def _cells(d: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return ["-" if d.get(k) is None else f"{d[k]:.4g}" if isinstance(d[k], float) else str(d[k]) for k in keys]
