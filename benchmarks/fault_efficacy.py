"""How much each CPU fault slows the engine on this machine: the same forward pass, timed before, during and after.

    .venv/bin/python benchmarks/fault_efficacy.py [--threads N] [--seconds 2] [--json]

The tiny random Llama's forward pass over a fixed (4 x 16) batch runs back to back on `--threads` torch intra-op
threads (default 1, as `prism dataset make` runs it). Each CPU fault the plugins contribute runs at intensities
0.5 and 1.0; a fault that acts through an engine stage (cpu.stage_delay) is left out, since a bare forward pass has
none. Prints first how the passes spread with no fault (15 s: the share over 1.5x the median, and the 99th and
99.9th percentiles over the median: the engine's own noise, which a detector must not flag), then, per fault and
intensity, the median pass during the fault over the median of the passes just before and just after it. A
labelled set (`prism dataset make`) labels every batch inside a fault abnormal: a fault that does not slow the
engine here gives labels no latency detector can match.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

from prism_core.demo.engine import load_model
from prism_core.plugins import host

INTENSITIES = (0.5, 1.0)
QUIET_S = 15.0


def passes(model: torch.nn.Module, ids: torch.Tensor, seconds: float) -> list[float]:
    out = []
    end = time.perf_counter() + seconds
    with torch.no_grad():
        while time.perf_counter() < end:
            start = time.perf_counter()
            model(ids)
            out.append(time.perf_counter() - start)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=2.0, help="timed seconds during each fault (default 2)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, _ = load_model("tiny")
    ids = torch.randint(3, 500, (4, 16), generator=torch.Generator().manual_seed(0))
    passes(model, ids, 1.0)  # warm-up
    quiet = np.array(passes(model, ids, QUIET_S))
    ratio = quiet / np.median(quiet)
    spread = {
        "passes": len(quiet),
        "median_ms": round(float(np.median(quiet)) * 1e3, 3),
        "share_over_1_5x": round(float((ratio > 1.5).mean()), 4),
        "p99_over_median": round(float(np.quantile(ratio, 0.99)), 3),
        "p99_9_over_median": round(float(np.quantile(ratio, 0.999)), 3),
    }
    if not a.json:
        print(f"no fault: {spread}", flush=True)
    slowdown: dict[str, float] = {}
    for name, fault in sorted(host().fault_injectors().items()):
        if not name.startswith("cpu.") or fault.resource == "stage":
            continue
        for x in INTENSITIES:
            before = passes(model, ids, a.seconds * 0.75)
            fault.start(x)
            try:
                during = passes(model, ids, a.seconds)
            finally:
                fault.stop()
            time.sleep(0.3)  # let the machine settle before the passes that close the baseline
            after = passes(model, ids, a.seconds * 0.75)
            slowdown[f"{name}:{x}"] = round(statistics.median(during) / statistics.median(before + after), 3)
            if not a.json:
                print(f"{name:<22} {x:<4} {slowdown[f'{name}:{x}']:>9.2f}x", flush=True)
    if a.json:
        figures = {"threads": a.threads, "no_fault": spread, "slowdown": slowdown, "load_average": os.getloadavg()}
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
