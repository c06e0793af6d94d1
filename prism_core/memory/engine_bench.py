"""Engine-level memory figures: a real transformers model (the tiny Llama) with its KV cache on the pool.

- `tokens_ratio`: tokens/s of the same engine (the plugin's paged cache) on the elastic pool vs on a static
  pre-allocated pool of the same size, alternated in one process so drift hits both alike (median of the
  per-round ratios).
  Pages are small enough that every request maps and unmaps some, so elasticity is paid, not skipped.
- `alternating_bursts`: two model processes take turns with bursts of different sizes on one broker; the
  pool's peak (sampled from the ledger) against what a static split must pre-allocate (both peaks).
"""

from __future__ import annotations

import importlib
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from prism_core.memory.broker import Broker


def _plugin(module: str) -> Any:
    """A module of the transformers plugin (prism_core does not import plugins statically)."""
    return importlib.import_module(f"prism_plugins.frameworks.transformers.{module}")


def tokens_ratio(
    *, rounds: int = 6, rows: int = 8, length: int = 64, new: int = 64, page_size: int = 256 * 1024
) -> dict[str, Any]:
    import torch

    kv, worker, tiny = (_plugin(m) for m in ("kv", "kv_worker", "tiny"))
    model = tiny.tiny_llama(0)
    ids = worker.prompt(rows, length)
    blocks = 4 * rows * -(-(length + new) // 16)
    with tempfile.TemporaryDirectory(prefix="prism-bench-") as directory:
        broker = Broker("cpu:0", 64 * 2**30, Path(directory))  # a roomy ledger: the cost of asking, not waiting
        static = kv.PagedKvStore.static(model, blocks)
        # Pages come and go with every request; two kept handles spare the kernel's free + re-zero of a page.
        options = {"page_size": page_size, "min_reserved_pages": 1, "max_reserved_pages": 2, "keep_handles": 2}
        elastic = kv.PagedKvStore.elastic(model, blocks, name="bench-elastic", broker_dir=Path(directory), **options)
        engines = {"static": kv.PagedGenerator(model, static), "elastic": kv.PagedGenerator(model, elastic)}
        seconds: dict[str, list[float]] = {"static": [], "elastic": []}
        outputs: dict[str, Any] = {}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one engine thread: far steadier on a shared machine than a thread pool
        try:
            for r in range(rounds + 1):  # round 0 warms both up and is not counted
                order = list(engines.items())
                for name, engine in order if r % 2 else order[::-1]:
                    t0 = time.perf_counter()
                    outputs[name] = engine.generate(ids, max_new_tokens=new, do_sample=False)
                    if r:
                        seconds[name].append(time.perf_counter() - t0)
        finally:
            torch.set_num_threads(threads)
            static.close()
            elastic.close()
            broker.close()
    tokens = rows * new
    ratios = [s / e for s, e in zip(seconds["static"], seconds["elastic"], strict=True)]
    return {
        "engine": "transformers tiny Llama, PagedCache, greedy",
        "engine_batch": rows,
        "engine_page_size": page_size,
        "engine_rounds": rounds,
        "engine_tokens_per_s_static": round(tokens / statistics.median(seconds["static"]), 1),
        "engine_tokens_per_s_elastic": round(tokens / statistics.median(seconds["elastic"]), 1),
        "elastic_vs_static_tokens_ratio": round(statistics.median(ratios), 4),
        "elastic_same_tokens": bool(torch.equal(outputs["static"], outputs["elastic"])),
    }


def alternating_bursts(*, bursts: int = 4, sizes: tuple[int, int] = (16, 6), new: int = 48) -> dict[str, Any]:
    worker = _plugin("kv_worker")
    page_size = 256 * 1024
    options = {"page_size": page_size, "min_reserved_pages": 1, "max_reserved_pages": 1}
    with tempfile.TemporaryDirectory(prefix="prism-bench-") as directory:
        broker = Broker("cpu:0", 64 * 2**30, Path(directory))
        config = worker.EngineConfig
        procs = [worker.EngineProcess(config(n, directory, num_blocks=1024, options=options)) for n in ("a", "b")]
        peaks = {"a": 0, "b": 0, "total": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.002):  # bursts last far longer than this
                models = broker.ledger.snapshot()[2]
                held = {s.name: s.held for s in models if s.state}
                for name in ("a", "b"):
                    peaks[name] = max(peaks[name], held.get(name, 0))
                peaks["total"] = max(peaks["total"], sum(held.values()))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            for _ in range(bursts):
                for p, rows in zip(procs, sizes, strict=True):
                    assert p.call("generate", (rows, 64, new))[0] == "ok"
            time.sleep(0.01)
        finally:
            stop.set()
            sampler.join()
            for p in procs:
                p.stop()
            broker.close()
    page_id = page_size * 8  # the tiny Llama: 4 layers x K/V
    return {
        "bursts_rows": list(sizes),
        "bursts_peak_bytes_a": peaks["a"],
        "bursts_peak_bytes_b": peaks["b"],
        "bursts_static_split_bytes": peaks["a"] + peaks["b"],
        "bursts_pool_peak_bytes": peaks["total"],
        "bursts_premapped_bytes": 2 * page_id,
        "bursts_pool_within_larger_plus_premapped": peaks["total"] <= max(peaks["a"], peaks["b"]) + 2 * page_id,
    }
