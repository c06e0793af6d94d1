"""`prism bench <what>`: the benchmarks behind BENCHMARKS.md, one function per benchmark."""

from __future__ import annotations

import argparse

from rich.table import Table

from prism_core.cli.output import console, print_json
from prism_core.errors import UsageError
from prism_core.models import Device


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser("bench", help="the benchmarks behind BENCHMARKS.md")
    what = bench.add_subparsers(dest="what", metavar="WHAT", parser_class=type(bench))
    what.required = True

    memory = what.add_parser("memory", help="VMM page map/unmap, block alloc throughput, cross-process reclaim")
    memory.add_argument("--backend", default="cpu", help="vendor whose first device to measure (default cpu)")
    memory.add_argument("--device", help="device id, e.g. nvidia:1 (overrides --backend)")
    memory.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not figures to publish")
    memory.add_argument("--json", action="store_true", help="print JSON")
    memory.set_defaults(func=bench_memory)

    capture = what.add_parser("capture", help="stage begin/end cost; throughput with vs without prism run + OTLP")
    capture.add_argument("--runs", type=int, default=6, help="alternating pairs of runs, with and without (default 6)")
    capture.add_argument("--rounds", type=int, default=5, help="generate() calls per run (default 5)")
    capture.add_argument(
        "--model", choices=("tiny", "smollm2"), default="tiny", help="tiny random Llama (default) or SmolLM2-135M"
    )
    capture.add_argument(
        "--soak", type=float, metavar="SECONDS", help="instead: serve this long with OTLP export, sample RSS and drops"
    )
    capture.add_argument("--json", action="store_true", help="print JSON")
    capture.set_defaults(func=bench_capture)

    detect = what.add_parser("detect", help="per-batch scoring cost and alert latency of the anomaly detector")
    detect.add_argument("--rows", type=int, default=40_000, help="rows of the model's training table (default 40000)")
    detect.add_argument("--json", action="store_true", help="print JSON")
    detect.set_defaults(func=bench_detect)


def _device(args: argparse.Namespace) -> Device:
    from prism_core.plugins import host

    h = host()
    if args.device:
        return h.device(args.device)
    for d in h.devices():
        if d.vendor == args.backend:
            return d
    reasons = "; ".join(str(p.unavailable) for p in h.probes() if p.unavailable and p.vendor == args.backend)
    raise UsageError(f"no {args.backend} device here" + (f" ({reasons})" if reasons else "") + "; see `prism devices`")


def bench_memory(args: argparse.Namespace) -> int:
    from prism_core.memory import VmmBackend
    from prism_core.memory.bench import memory
    from prism_core.plugins import host

    device = _device(args)

    def backend() -> VmmBackend:
        b = host().vmm_backend(device)
        if b is None:
            raise UsageError(f"no plugin offers a VMM backend for {device.id} (see `prism plugins`)")
        return b

    figures = memory(backend, device.id, quick=args.quick)
    if args.json:
        print_json(figures)
        return 0
    table = Table("figure", "value", title=f"prism bench memory ({device.id})")
    for key, value in figures.items():
        table.add_row(key, "null" if value is None else str(value))
    console.print(table)
    return 0


def bench_capture(args: argparse.Namespace) -> int:
    from prism_core.capture.bench import capture, soak

    if args.soak is not None:
        figures, model = soak(seconds=args.soak), "tiny"  # the soak serves the tiny Llama
    else:
        figures, model = capture(runs=args.runs, rounds=args.rounds, model=args.model), args.model
    if args.json:
        print_json(figures)
        return 0
    table = Table("figure", "value", title=f"prism bench capture (transformers, {model} model, CPU)")
    for key, value in figures.items():
        if key != "samples":
            table.add_row(key, str(value))
    console.print(table)
    return 0


def bench_detect(args: argparse.Namespace) -> int:
    from prism_core.detect.bench import detect

    if args.rows < 1000:
        raise UsageError(f"--rows must be at least 1000, got {args.rows}")
    figures = detect(rows=args.rows)
    if args.json:
        print_json(figures)
        return 0
    table = Table("figure", "value", title="prism bench detect")
    for key, value in figures.items():
        table.add_row(key, str(value))
    console.print(table)
    return 0
