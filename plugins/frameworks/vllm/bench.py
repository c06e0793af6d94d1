"""Serving throughput of vLLM's OpenAI server with and without Prism, same requests, measured side by side.

    .cache/vllm-venv/bin/python -m prism_plugins.frameworks.vllm.bench [--model DIR] [--rounds 6] [--json]
    .cache/vllm-venv/bin/python -m prism_plugins.frameworks.vllm.bench --in-process [--rounds 15]
    .cache/vllm-venv/bin/python -m prism_plugins.frameworks.vllm.bench --stage-cost [--multiprocess] [--shape smollm2]

Both servers run at once (one plain, one under `prism run --export jsonl:...`), each idle while the other is
measured; rounds alternate which goes first. A round sends the same greedy requests (fixed prompts, exact output
length) with bounded concurrency and counts generated tokens per second. Prints the per-round figures and the
median ratio. `--in-process` times `vllm.LLM.generate` in one process instead (the engine core and model runner
on one thread), capture installed and uninstalled in alternate rounds, and compares each pair of rounds twice:
tokens per second, and the process's CPU time per token (all threads, the collector's included), which a busy
neighbour on a shared machine disturbs far less than wall time. `--stage-cost` measures capture's own time per
call inside the engine instead (a timer inside and one outside each of Prism's wrappers), and the collector's
CPU time per batch: figures a noisy machine barely moves.
Needs the interpreter of a venv with vLLM and this package (scripts/vllm-venv).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prism_core.capture.collector import EXPORT_INTERVAL_S
from prism_core.loopback import free_port
from prism_plugins.frameworks.vllm.serve import Server, server_command

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "a",
    "server",
    "batches",
    "requests",
]


def prompts(n: int, length: int) -> list[str]:
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(length)) for i in range(n)]


def run_round(server: Server, batch: list[str], max_tokens: int, concurrency: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        outs = list(pool.map(lambda p: server.complete(p, max_tokens), batch))
    elapsed = time.perf_counter() - start
    return sum(int(o["usage"]["completion_tokens"]) for o in outs) / elapsed


def _engine(model: str, max_tokens: int, *, multiprocess: bool = False) -> tuple[Any, Any]:
    """`vllm.LLM` and greedy sampling of `max_tokens`: the engine core and model runner on this thread, or with
    `multiprocess` in processes of their own as the server runs them."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1" if multiprocess else "0"
    import vllm

    llm = vllm.LLM(model=model, dtype="bfloat16", max_model_len=512, max_num_seqs=8, enforce_eager=True, seed=0)
    return llm, vllm.SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True)


def in_process(model: str, rounds: int, batch: list[str], max_tokens: int, out: Path) -> dict[str, object]:
    from prism_core.capture.bench import alternate, mean_ci95, quartiles
    from prism_core.capture.session import CaptureSession
    from prism_plugins.frameworks.vllm import VllmAdapter

    llm, params = _engine(model, max_tokens)
    session = CaptureSession.from_specs([f"jsonl:{out}"], device_id="cpu:0")
    adapter = VllmAdapter()
    tokens = len(batch) * max_tokens

    def measure() -> tuple[float, float]:
        """Tokens per second, and this process's CPU time (every thread) per token in us. A captured round ends
        with the collector's work on its batches done (flush), so none of it spills into the next round."""
        wall, cpu = time.perf_counter(), time.process_time()
        llm.generate(batch, params, use_tqdm=False)
        if session.installed:
            session.flush()
        return tokens / (time.perf_counter() - wall), (time.process_time() - cpu) / tokens * 1e6

    measure()  # warm-up
    timed = alternate(session, adapter, rounds, measure)
    stats = session.collector.stats()
    session.close()
    rate = {"plain": [r for r, _ in timed["without"]], "prism": [r for r, _ in timed["with"]]}
    cpu = {"plain": [c for _, c in timed["without"]], "prism": [c for _, c in timed["with"]]}
    rate_pairs = [p / q for p, q in zip(rate["prism"], rate["plain"], strict=True)]
    cpu_pairs = [p / q for p, q in zip(cpu["prism"], cpu["plain"], strict=True)]
    return {
        "mode": "in-process",
        "plain_tokens_per_s": rate["plain"],
        "prism_tokens_per_s": rate["prism"],
        "median_pair_ratio": statistics.median(rate_pairs),
        "pair_ratio_iqr": quartiles(rate_pairs),
        "mean_pair_ratio_ci95": mean_ci95(rate_pairs),
        "plain_cpu_us_per_token": cpu["plain"],
        "prism_cpu_us_per_token": cpu["prism"],
        # CPU time is what a CPU-bound server runs out of; unlike wall time, a busy neighbour does not inflate it.
        "cpu_per_token_median_pair_ratio": statistics.median(cpu_pairs),
        "cpu_pair_ratio_iqr": quartiles(cpu_pairs),
        "cpu_mean_pair_ratio_ci95": mean_ci95(cpu_pairs),
        "batches": stats.batches,
        "collector_cpu_us_per_batch": stats.collector_cpu_ns / 1e3 / max(1, stats.batches),
        "load_average": os.getloadavg(),
    }


def stage_cost(
    model: str, rounds: int, batch: list[str], max_tokens: int, out: Path, interval_s: float | None = None
) -> dict[str, object]:
    """Capture's own time on the engine thread, call by call, inside the real engine: every patch point gets a
    timer inside Prism's wrapper (around vLLM's method) and one outside it; the difference is the wrapper's time
    plus one timer layer's own. A third timer around the outer one measures that layer in the same place (after a
    forward pass the caches are cold, so a timer costs several times what it does in a loop), and it is
    subtracted. Direct where a throughput difference drowns in noise. The collector thread's cost comes from its
    CPU clock; `interval_s` fixes its pass interval (default: the collector's own schedule)."""
    llm, params = _engine(model, max_tokens)
    llm.generate(batch, params, use_tqdm=False)  # warm-up
    probe = _Probe(out, interval_s)
    start = probe.snapshot()
    wall = time.perf_counter()
    for _ in range(rounds):
        llm.generate(batch, params, use_tqdm=False)
    wall = time.perf_counter() - wall
    time.sleep(EXPORT_INTERVAL_S + 0.1)  # the collector passes over the last batches on its own thread
    end = probe.snapshot()
    probe.session.close()
    return _figures([start], [end], wall, "stage-cost")


def stage_cost_multiprocess(
    model: str, rounds: int, batch: list[str], max_tokens: int, out: Path, interval_s: float | None = None
) -> dict[str, object]:
    """`stage_cost` with vLLM's processes as its server runs them: the engine core in a process of its own and the
    model runner in a worker process (the multiprocess executor). Every vLLM process loads a probe through a
    `vllm.general_plugins` entry point declared in a folder put on PYTHONPATH; each probe installs the timers and
    capture as `stage_cost` does and writes its running totals to a file. Per step, the time added in the engine
    core and in the worker are summed (the engine core waits for the worker), and the collectors of all processes
    are counted."""
    os.environ[PROBE_ENV] = json.dumps({"out": str(out.parent), "interval_s": interval_s})
    plugin = out.parent / "probe" / "prism_vllm_bench_probe-0.dist-info"
    plugin.mkdir(parents=True)
    (plugin / "METADATA").write_text("Metadata-Version: 2.1\nName: prism-vllm-bench-probe\nVersion: 0\n")
    (plugin / "entry_points.txt").write_text(f"[vllm.general_plugins]\nprism_bench = {__name__}:probe\n")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin.parent), os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, str(plugin.parent))  # forked processes inherit this; spawned ones read PYTHONPATH
    llm, params = _engine(model, max_tokens, multiprocess=True)
    llm.generate(batch, params, use_tqdm=False)  # warm-up
    settle = EXPORT_INTERVAL_S + 2 * PROBE_DUMP_S  # the collectors have passed over every batch, and said so
    time.sleep(settle)
    start = _read_probes(out.parent)
    wall = time.perf_counter()
    for _ in range(rounds):
        llm.generate(batch, params, use_tqdm=False)
    wall = time.perf_counter() - wall
    time.sleep(settle)
    end = _read_probes(out.parent)
    llm.llm_engine.engine_core.shutdown()
    return {**_figures(start, end, wall, "stage-cost, multiprocess"), "processes": len(end)}


PROBE_ENV = "PRISM_VLLM_BENCH_PROBE"
PROBE_DUMP_S = 0.25


class _Probe:
    """In one process: vLLM's methods timed, Prism's capture installed around them, and two timer layers around
    that (see `stage_cost`)."""

    def __init__(self, out: Path, interval_s: float | None) -> None:
        from prism_core.capture.session import CaptureSession
        from prism_plugins.frameworks.vllm import VllmAdapter

        adapter = VllmAdapter()
        owners = {
            f"{cls}.{attr}": (getattr(importlib.import_module(module), cls), attr)
            for module, points in adapter.engine.points().items()
            for cls, attr, _ in points
        }
        self.inner = {name: _timed(*owner) for name, owner in owners.items()}  # vLLM's own methods, timed
        self.session = CaptureSession.from_specs([f"jsonl:{out}"], device_id="cpu:0", interval_s=interval_s)
        self.session.install(adapter)  # Prism's wrappers go around the timed methods
        self.outer = {name: _timed(*owner) for name, owner in owners.items()}
        self.meta = {name: _timed(*owner) for name, owner in owners.items()}  # times the outer timer

    def snapshot(self) -> dict[str, Any]:
        stats = self.session.collector.stats()
        return {
            "calls": {name: acc[1] for name, acc in self.outer.items()},
            "inner": {name: acc[0] for name, acc in self.inner.items()},
            "outer": {name: acc[0] for name, acc in self.outer.items()},
            "meta": {name: acc[0] for name, acc in self.meta.items()},
            "collector_cpu_ns": stats.collector_cpu_ns,
            "batches": stats.batches,
        }


def probe() -> None:
    """The `vllm.general_plugins` entry point of `stage_cost_multiprocess`: runs in every vLLM process."""
    config = json.loads(os.environ[PROBE_ENV])
    out = Path(config["out"])
    p = _Probe(out / f"records-{os.getpid()}.jsonl", config["interval_s"])
    path = out / f"probe-{os.getpid()}.json"

    def dump() -> None:
        while True:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(p.snapshot()))
            tmp.replace(path)
            time.sleep(PROBE_DUMP_S)

    threading.Thread(target=dump, name="prism-bench-probe", daemon=True).start()


def _read_probes(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in sorted(folder.glob("probe-*.json"))]


def _figures(start: list[dict[str, Any]], end: list[dict[str, Any]], wall: float, mode: str) -> dict[str, object]:
    """Per step and per call, from the totals of each process at the start and the end of the timed rounds."""

    def total(key: str, name: str | None = None) -> int:
        def one(snap: dict[str, Any]) -> int:
            return int(snap[key] if name is None else snap[key][name])

        return sum(one(s) for s in end) - sum(one(s) for s in start)

    names = list(end[0]["calls"])
    steps = total("calls", "Scheduler.schedule")
    calls = {name: total("calls", name) for name in names}
    layer = {name: total("meta", name) - total("outer", name) for name in names}
    prism = {name: total("outer", name) - total("inner", name) - layer[name] for name in names}
    engine_us = sum(prism.values()) / steps / 1e3
    collector_us = total("collector_cpu_ns") / 1e3 / max(1, total("batches"))
    step_us = wall / steps * 1e6
    return {
        "mode": mode,
        "steps": steps,
        "step_ms": step_us / 1e3,
        "prism_us_per_call": {name: prism[name] / calls[name] / 1e3 for name in names if calls[name]},
        "engine_thread_us_per_step": engine_us,
        "timer_layer_us_per_step": sum(layer.values()) / steps / 1e3,  # subtracted above
        "collector_cpu_us_per_batch": collector_us,
        "engine_thread_pct": engine_us / step_us * 100,
        # As if the engine waited for every microsecond of the collector (no overlap on another core).
        "overhead_pct_upper": (engine_us + collector_us) / step_us * 100,
        "load_average": os.getloadavg(),
    }


def _timed(owner: Any, attr: str) -> list[int]:
    """Replace `owner.attr` by a timed call of what is there now; returns [total ns, calls], updated in place.
    Never undone: the bench process ends after its one run."""
    original, acc, clock = getattr(owner, attr), [0, 0], time.perf_counter_ns

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return original(*args, **kwargs)
        finally:
            acc[0] += clock() - start
            acc[1] += 1

    setattr(owner, attr, timed)
    return acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (default: a random Llama of --shape built here)")
    p.add_argument("--shape", choices=("tiny", "smollm2"), default="tiny", help="tiny (4.5 M) or SmolLM2-135M's shape")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--requests", type=int, default=32)
    p.add_argument("--prompt-words", type=int, default=24)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--json", action="store_true")
    p.add_argument("--in-process", action="store_true", help="time vllm.LLM in this process (see above)")
    p.add_argument("--stage-cost", action="store_true", help="Prism's own time per call inside vllm.LLM (see above)")
    p.add_argument("--pass-interval", type=float, help="with --stage-cost: a collector pass every this many seconds")
    p.add_argument(
        "--multiprocess",
        action="store_true",
        help="with --stage-cost: the engine core and the model runner in their own processes, as the server runs them",
    )
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="prism-vllm-bench-"))
    model = a.model
    if model is None:
        from prism_plugins.frameworks.transformers.tiny import SMOLLM2_SHAPE, save_tiny_llama

        model = str(save_tiny_llama(tmp / "model", **(SMOLLM2_SHAPE if a.shape == "smollm2" else {})))
    if a.stage_cost:
        batch = prompts(a.requests, a.prompt_words)
        cost = stage_cost_multiprocess if a.multiprocess else stage_cost
        result = cost(model, a.rounds, batch, a.max_tokens, tmp / "records.jsonl", a.pass_interval)
        print(json.dumps(result) if a.json else f"overhead at most {result['overhead_pct_upper']:.3f}%")
        return
    if a.in_process:
        result = in_process(model, a.rounds, prompts(a.requests, a.prompt_words), a.max_tokens, tmp / "records.jsonl")
        print(json.dumps(result) if a.json else f"median pair ratio prism/plain {result['median_pair_ratio']:.4f}")
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRISM_")}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    prism = Path(sys.executable).parent / "prism"
    servers: dict[str, Server] = {}
    for name in ("plain", "prism"):
        port = free_port()
        command = server_command(sys.executable, model, port)
        if name == "prism":
            command = [str(prism), "run", "--export", f"jsonl:{tmp / 'records.jsonl'}", "--", *command]
        servers[name] = Server.start(command, env, tmp / f"{name}.log", port, model)
    figures: dict[str, list[float]] = {"plain": [], "prism": []}
    try:
        for server in servers.values():
            server.wait_ready(600)
        batch = prompts(a.requests, a.prompt_words)
        for server in servers.values():  # warm-up: first requests pay one-off costs
            run_round(server, batch[: a.concurrency], a.max_tokens, a.concurrency)
        for i in range(a.rounds):
            order = ("plain", "prism") if i % 2 == 0 else ("prism", "plain")
            for name in order:
                figures[name].append(run_round(servers[name], batch, a.max_tokens, a.concurrency))
    finally:
        for server in servers.values():
            server.stop()
    ratios = [w / wo for w, wo in zip(figures["prism"], figures["plain"], strict=True)]
    result = {
        "plain_tokens_per_s": figures["plain"],
        "prism_tokens_per_s": figures["prism"],
        "median_ratio": statistics.median(ratios),
        "overhead_pct": (1 - statistics.median(ratios)) * 100,
        "requests_per_round": a.requests,
        "max_tokens": a.max_tokens,
        "concurrency": a.concurrency,
        "load_average": os.getloadavg(),
    }
    if a.json:
        print(json.dumps(result))
    else:
        for name in ("plain", "prism"):
            print(f"{name:>6}: " + " ".join(f"{x:.1f}" for x in figures[name]) + " tokens/s")
        print(f"median ratio prism/plain {result['median_ratio']:.4f} (overhead {result['overhead_pct']:+.2f}%)")


if __name__ == "__main__":
    main()
