"""The issue's two targets for `prism simulate`, on several scenarios and seeds, in one command.

    .venv/bin/python benchmarks/schedule_targets.py [--seeds 0,1,2] [--duration 600] [--only NAME] > out.json

For each scenario and seed: the rate scale at which static partitioning's attainment falls to 25% (bisection,
as `prism simulate --match-load static:0.25`), every policy's attainment there and its ratio to static's, and
every policy's attainment at 1x. The scenarios: the default fleet (20 models on 8 H100); the same with every
policy on least-slack admission (isolates placement and sharing from admission); and two memory-bound ones,
as in the Prism paper's setting of more models than fit resident: 40 models on 8 H100, and 20 models on 8
A100-40GB. Nothing here is tuned: the simulator's defaults run unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from prism_core.errors import UsageError
from prism_core.plugins import host
from prism_core.schedule.catalogue import BUILTIN
from prism_core.schedule.cost import RooflineCost
from prism_core.schedule.scenario import Scenario
from prism_core.schedule.search import Bench, load_at

POLICIES = ("prism", "static", "space-no-elastic", "time-sharing")
SCENARIOS: dict[str, dict[str, Any]] = {
    "default-20x8-h100": {"n_models": 20, "devices": ("h100",) * 8},
    "default-20x8-h100-all-least-slack": {"n_models": 20, "devices": ("h100",) * 8, "admission": "least-slack"},
    "memory-40x8-h100": {"n_models": 40, "devices": ("h100",) * 8},
    "memory-20x8-a100-40gb": {"n_models": 20, "devices": ("a100-40gb",) * 8},
}


def run(name: str, spec: dict[str, Any], seed: int, duration: float) -> dict[str, Any]:
    h = host()
    placements, admissions = h.placement_policies(), h.admission_policies()
    pairs = [(placements[p], admissions[spec.get("admission") or placements[p].admission]) for p in POLICIES]
    scenario = Scenario(n_models=spec["n_models"], device_types=spec["devices"], duration_s=duration, seed=seed)
    bench = Bench(scenario, BUILTIN, RooflineCost())
    started = time.perf_counter()
    at_1x = {p.name: round(bench.run(p, a).slo_attainment, 4) for p, a in pairs}
    out: dict[str, Any] = {"scenario": name, "seed": seed, "duration_s": duration, "attainment_at_1x": at_1x}
    try:
        scale = round(load_at(bench, pairs[1][0], pairs[1][1], 0.25), 4)
    except UsageError as exc:
        out["static_25pct_load"] = None
        out["note"] = str(exc)
    else:
        s = dataclasses.replace(scenario, rate_scale=scale)
        w = bench.workload(s)
        att = {p.name: round(bench.run(p, a, s, w).slo_attainment, 4) for p, a in pairs}
        out["static_25pct_load"] = scale
        out["attainment_at_static_25pct"] = att
        out["ratio_to_static"] = {k: round(v / att["static"], 3) for k, v in att.items() if att["static"] > 0}
    out["wall_s"] = round(time.perf_counter() - started, 1)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--duration", type=float, default=600.0)
    p.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    a = p.parse_args()
    results = []
    for name in a.only or list(SCENARIOS):
        for seed in (int(s) for s in a.seeds.split(",")):
            r = run(name, SCENARIOS[name], seed, a.duration)
            print(json.dumps(r), file=sys.stderr, flush=True)
            results.append(r)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
