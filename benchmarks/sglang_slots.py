"""What the elastic pool adds to each SGLang scheduler pass, beside SGLang's own static allocator.

    .venv/bin/python benchmarks/sglang_slots.py [--runs 10] [--passes 2000] [--batch 64]

A steady decode load on the stand-in of SGLang's pools (prism_core.testing.sglang_memory, page size 1, 8 heads of
64 float32, two layers): `--batch` requests each take one slot per pass, and every 16th pass one request finishes
(its slots freed in a group) and a new one is admitted with a 128-token prompt, as SGLang's scheduler calls the
allocator. The elastic side also runs what its pass wrapper adds: the demand estimate from the waiting and running
requests, securing slots at the start of the pass and settling at its end. Runs alternate static and elastic;
the script prints the median microseconds per pass of each (scheduler-thread time, `time.thread_time_ns`) and
their difference. The broker budget is ample, so this is the cost of the bookkeeping, not of waiting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Any

from prism_core.capture.patching import Patcher
from prism_core.testing.sglang_loop import Req
from prism_core.testing.sglang_memory import PooledScheduler, init_memory_pool, model_runner_module
from prism_plugins.frameworks.sglang.kv import ElasticSglang, ElasticSlots, pass_demand

PROMPT = 128


def one_run(allocator: Any, passes: int, batch: int) -> float:
    """Microseconds of scheduler-thread CPU per pass."""
    import torch

    scheduler = PooledScheduler([], allocator)
    prompts = allocator.alloc(batch * PROMPT)
    held = [[prompts[i * PROMPT : (i + 1) * PROMPT]] for i in range(batch)]  # each request's slots, in pieces
    scheduler.running_batch.reqs = [Req(f"r{i}", [1] * PROMPT, 1 << 20) for i in range(batch)]
    elastic = isinstance(allocator, ElasticSlots)
    begin = time.thread_time_ns()
    for n in range(passes):
        if elastic:
            allocator.begin_pass(*pass_demand(scheduler))
        loc = allocator.alloc(batch)
        for i, pieces in enumerate(held):
            pieces.append(loc[i : i + 1])
        if n % 16 == 15:
            allocator.free_group_begin()
            allocator.free(torch.cat(held.pop(0)))
            allocator.free_group_end()
            held.append([allocator.alloc(PROMPT)])
        if elastic:
            allocator.end_pass(idle=False)
    spent = time.thread_time_ns() - begin
    for pieces in held:
        allocator.free(torch.cat(pieces))
    return spent / passes / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--passes", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as broker_dir:
        os.environ["PRISM_BROKER_DIR"] = broker_dir
        pool = args.batch * (PROMPT + args.passes) + PROMPT * (args.passes // 16 + 1)  # nothing waits for room
        kv, module = ElasticSglang(Patcher()), model_runner_module()
        static = init_memory_pool(model_runner_module(), pool)
        kv.patch_module(module)
        elastic = init_memory_pool(module, pool)
        times: dict[str, list[float]] = {"static": [], "elastic": []}
        for _ in range(args.runs):
            for name, allocator in (("static", static), ("elastic", elastic)):
                times[name].append(one_run(allocator, args.passes, args.batch))
                allocator.clear()
        for cache in kv.caches:
            cache.close()
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(
        json.dumps(
            {
                "batch": args.batch,
                "static_us_per_pass": round(medians["static"], 1),
                "elastic_us_per_pass": round(medians["elastic"], 1),
                "added_us_per_pass": round(medians["elastic"] - medians["static"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
