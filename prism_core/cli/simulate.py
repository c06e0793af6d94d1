"""`prism simulate`: many models on many devices, real request traces, policies compared side by side."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from rich.table import Table

from prism_core.cli.output import console, print_json
from prism_core.errors import UsageError
from prism_core.plugins import host
from prism_core.schedule.catalogue import BUILTIN, load_catalogue
from prism_core.schedule.cost import CostModel, RooflineCost
from prism_core.schedule.policies import AdmissionPolicy, DeviceSlot, PlacementPolicy
from prism_core.schedule.profile import load_profile
from prism_core.schedule.results import PolicyResult
from prism_core.schedule.scenario import Scenario, parse_devices
from prism_core.schedule.search import Bench, devices_needed, load_at, placement_demands, sweep, time_placement

DEFAULT_LOADS = (0.5, 1.0, 2.0, 4.0, 8.0)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("simulate", help="multi-model serving simulation on real request traces")
    p.add_argument("--models", type=int, default=20, metavar="N", help="number of models (default 20)")
    p.add_argument("--devices", default="8", metavar="M", help="device count, or a fleet like 4xh100,4xa100-80gb")
    p.add_argument("--device-type", default="h100", help="device type when --devices is a count (default h100)")
    p.add_argument("--trace", choices=("conv", "code", "both"), default="both", help="Azure LLM trace (default both)")
    p.add_argument("--policy", default="prism", help="placement policy to run (default prism)")
    p.add_argument("--baseline", action="append", default=[], metavar="NAME", help="also run this policy")
    p.add_argument("--admission", metavar="NAME", help="admission policy for every run (default: each policy's)")
    p.add_argument("--rate-scale", type=float, default=1.0, metavar="X", help="load: X times the trace's rate")
    p.add_argument("--seed", type=int, default=0, help="workload seed (popularity, on/off, model sizes)")
    p.add_argument("--duration", type=float, default=600.0, metavar="S", help="simulated seconds (default 600)")
    p.add_argument("--slo-scale", type=float, default=5.0, help="SLO = this x dedicated latency (default 5)")
    p.add_argument("--queue-cap", type=int, metavar="N", help="waiting requests per model before arrivals are shed")
    p.add_argument("--model-mix", metavar="A,B", help="catalogue model names to draw the N models from")
    p.add_argument("--catalogue", type=Path, metavar="JSON", help="model and device catalogue (default built-in)")
    p.add_argument("--profile", type=Path, metavar="PATH", help="batch records (JSONL or CSV) instead of the roofline")
    p.add_argument("--cost-search", action="store_true", help="find devices_needed_for_99 for every policy")
    p.add_argument("--cost-target", type=float, default=0.99, metavar="F", help="cost search target (default 0.99)")
    p.add_argument("--max-devices", type=int, metavar="K", help="cost search upper bound (default 4 x models)")
    p.add_argument("--match-load", metavar="POLICY:FRACTION", help="run at the load where POLICY attains FRACTION")
    p.add_argument("--plot", type=Path, metavar="PNG", help="plot attainment against load for every policy")
    p.add_argument("--loads", metavar="X,Y", help=f"rate scales for --plot (default {DEFAULT_LOADS})")
    p.add_argument("--bench-placement", metavar="NxM", help="time placement of N models on M devices and exit")
    p.add_argument("--validate-cpu", action="store_true", help="compare cost models with the tiny model on this CPU")
    p.add_argument("--validate-batches", default="1,2,4,8,16", metavar="B,B", help="batch sizes for --validate-cpu")
    p.add_argument("--validate-inputs", default="16,64,128,256,512", metavar="N,N", help="prompt lengths for it")
    p.add_argument("--validate-new-tokens", type=int, default=8, metavar="K", help="tokens generated per prompt")
    p.add_argument("--validate-records", type=Path, metavar="JSONL", help="keep the engine's batch records here")
    p.add_argument("--json", action="store_true", help="print JSON keyed by policy name")
    p.set_defaults(func=cmd_simulate)


def _floats(arg: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in arg.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} {arg!r}: expected numbers separated by commas") from None
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"{flag} {arg!r}: expected positive numbers")
    return values


def _policies(args: argparse.Namespace) -> list[tuple[PlacementPolicy, AdmissionPolicy]]:
    h = host()
    placements = h.placement_policies()
    admissions = h.admission_policies()
    out = []
    for name in dict.fromkeys([args.policy, *args.baseline]):
        if name not in placements:
            raise UsageError(f"unknown policy {name!r} (registered: {', '.join(sorted(placements))})")
        policy = placements[name]
        adm = args.admission or policy.admission
        if adm not in admissions:
            raise UsageError(f"unknown admission policy {adm!r} (registered: {', '.join(sorted(admissions))})")
        out.append((policy, admissions[adm]))
    return out


def _bench(args: argparse.Namespace) -> Bench:
    if args.models < 1:
        raise UsageError(f"--models must be >= 1 (got {args.models})")
    if args.duration <= 0 or args.rate_scale <= 0:
        raise UsageError("--duration and --rate-scale must be > 0")
    if not 0 < args.cost_target <= 1:
        raise UsageError(f"--cost-target must be in (0, 1] (got {args.cost_target})")
    if args.queue_cap is not None and args.queue_cap < 1:
        raise UsageError(f"--queue-cap must be >= 1 (got {args.queue_cap})")
    catalogue = load_catalogue(args.catalogue) if args.catalogue else BUILTIN
    cost: CostModel = load_profile(args.profile) if args.profile else RooflineCost()
    catalogue.device(args.device_type)
    scenario = Scenario(
        n_models=args.models,
        device_types=parse_devices(args.devices, args.device_type),
        trace=args.trace,
        duration_s=args.duration,
        rate_scale=args.rate_scale,
        seed=args.seed,
        slo_scale=args.slo_scale,
        queue_cap=args.queue_cap,
        model_mix=tuple(n.strip() for n in args.model_mix.split(",") if n.strip()) if args.model_mix else (),
    )
    for t in scenario.device_types:
        catalogue.device(t)
    return Bench(scenario, catalogue, cost)


def _ints(arg: str, flag: str) -> list[int]:
    values = _floats(arg, flag)
    if any(v != int(v) for v in values):
        raise UsageError(f"{flag} {arg!r}: expected whole numbers")
    return [int(v) for v in values]


def _validate_cpu(args: argparse.Namespace) -> int:
    from prism_core.schedule.validation import validate_cpu

    batches = _ints(args.validate_batches, "--validate-batches")
    inputs = _ints(args.validate_inputs, "--validate-inputs")
    report = validate_cpu(batches, inputs, args.validate_new_tokens, args.validate_records)
    if args.json:
        print_json(report)
        return 0
    d = report["device"]
    console.print(
        f"device (measured): {d['bandwidth_Bps'] / 1e9:.1f} GB/s copy, {d['flops'] / 1e9:.0f} GFLOP/s fp32 matmul; "
        f"{report['iterations']['train']} iterations fitted, {report['iterations']['held_out']} held out"
    )
    table = Table("cost model", "mode", "MAPE", "median APE", "within 25%", "predicted / measured")
    labels = {"roofline": "roofline (this run)", "roofline_cpu-1core": "roofline (cpu-1core)", "profile": "profile"}
    rows = [(label, mode, e) for key, label in labels.items() for mode, e in report[key]["error"].items()]
    rows.append(("noise floor", "decode", report["repeatability"]))
    for name, mode, e in rows:
        table.add_row(
            name,
            mode,
            f"{e['mape']:.1%}",
            f"{e['median_ape']:.1%}",
            f"{e['within_25pct']:.0%}",
            f"{e['median_ratio']:.2f}",
        )
    console.print(table)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.validate_cpu:
        return _validate_cpu(args)
    policies = _policies(args)
    bench = _bench(args)
    if args.bench_placement:
        return _bench_placement(args, bench, policies)
    if args.match_load:
        name, _, frac = args.match_load.partition(":")
        target = next((pa for pa in policies if pa[0].name == name), None)
        if target is None:
            raise UsageError(f"--match-load {args.match_load!r}: {name!r} is not among the policies run")
        scale = load_at(bench, *target, _floats(frac, "--match-load")[0])
        bench = dataclasses.replace(bench, scenario=dataclasses.replace(bench.scenario, rate_scale=round(scale, 4)))
    w = bench.workload(bench.scenario)
    results: dict[str, PolicyResult] = {}
    for policy, admission in policies:
        result = bench.run(policy, admission, w=w)
        if args.cost_search:
            needed, tried = devices_needed(bench, policy, admission, args.cost_target, args.max_devices)
            update = {"devices_needed_for_99": needed, "cost_search": tried, "cost_target": args.cost_target}
            result = result.model_copy(update=update)
        results[policy.name] = result
    if args.plot:
        loads = _floats(args.loads, "--loads") if args.loads else list(DEFAULT_LOADS)
        s = bench.scenario
        title = (
            f"{s.n_models} models, {len(s.device_types)} devices, trace {s.trace}, {s.duration_s:g} s, seed {s.seed}"
        )
        from prism_core.schedule.plot import plot_attainment

        plot_attainment(sweep(bench, policies, loads), args.plot, title)
    if args.json:
        print_json(results)
    else:
        _table(results)
        if args.plot:
            console.print(f"plot: {args.plot}")
    return 0


def _bench_placement(
    args: argparse.Namespace, bench: Bench, policies: list[tuple[PlacementPolicy, AdmissionPolicy]]
) -> int:
    n, _, m = args.bench_placement.lower().partition("x")
    try:
        n_models, n_devices = int(n), int(m)
    except ValueError:
        raise UsageError(f"--bench-placement {args.bench_placement!r}: expected NxM, e.g. 1000x100") from None
    spec = bench.catalogue.device(args.device_type)
    devices = [DeviceSlot(i, spec.memory_bytes) for i in range(n_devices)]
    demands = placement_demands(n_models, bench.catalogue, args.seed)
    out: dict[str, Any] = {}
    for policy, _ in policies:
        out[policy.name] = {"models": n_models, "devices": n_devices, **time_placement(policy, demands, devices)}
    if args.json:
        print_json(out)
    else:
        for name, r in out.items():
            console.print(
                f"{name}: place {r['place_ms']:.1f} ms, re-plan {r['replan_ms']:.1f} ms ({n_models} x {n_devices})"
            )
    return 0


def _table(results: dict[str, PolicyResult]) -> None:
    table = Table("policy", "attainment", "TTFT ok", "TPOT ok", "p99 TTFT", "p99 TPOT", "devices for 99%", "util")
    for name, r in results.items():
        util = sum(r.device_utilisation) / max(len(r.device_utilisation), 1)
        table.add_row(
            name,
            f"{r.slo_attainment:.1%}",
            f"{r.ttft_attainment:.1%}",
            f"{r.tpot_attainment:.1%}",
            f"{r.p99_ttft_s:.3f} s" if r.p99_ttft_s is not None else "unfinished",
            f"{r.p99_tpot_s * 1e3:.1f} ms" if r.p99_tpot_s is not None else "unfinished",
            str(r.devices_needed_for_99) if r.devices_needed_for_99 is not None else "-",
            f"{util:.0%}",
        )
    first = next(iter(results.values()))
    console.print(table)
    console.print(
        f"{first.requests} requests, {first.models} models, {first.devices} devices, trace {first.trace}, "
        f"{first.duration_s:g} s at {first.rate_scale:g}x, seed {first.seed}"
    )
