"""Start-up time of this environment's interpreter with and without the PRISM_ENABLE hook (`prism hook install`),
for programs that do not set PRISM_ENABLE.

    .venv/bin/python benchmarks/hook_startup.py [--runs 40]

Times `python -c pass` in a fresh process, the hook installed and removed in alternate runs (the order flips each
pair). The hook goes into this interpreter's own site-packages, since Python reads .pth files only there, and is
removed at the end, as it is if the run fails. Prints the two medians and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from prism_core.bootstrap.enable import PTH_NAME, install, remove, site_dir


def started_ms() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=40)
    runs = p.parse_args().runs
    site = site_dir()
    if (site / PTH_NAME).exists():
        sys.exit(f"{site} already has the hook: remove it first (prism hook remove)")
    times: dict[str, list[float]] = {"with": [], "without": []}
    try:
        for i in range(runs):
            for mode in ("without", "with") if i % 2 == 0 else ("with", "without"):
                if mode == "with":
                    install(site)
                else:
                    remove(site)
                times[mode].append(started_ms())
    finally:
        remove(site)
    medians = {mode: statistics.median(ms) for mode, ms in times.items()}
    print(json.dumps({"median_ms": medians, "ratio": medians["with"] / medians["without"], "runs": runs}))


if __name__ == "__main__":
    main()
