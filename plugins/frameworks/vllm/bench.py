"""Serving throughput of vLLM's OpenAI server with and without Prism, same requests, measured side by side.

    .cache/vllm-venv/bin/python -m prism_plugins.frameworks.vllm.bench [--model DIR] [--rounds 6] [--json]
    .cache/vllm-venv/bin/python -m prism_plugins.frameworks.vllm.bench --in-process [--rounds 15]

Both servers run at once (one plain, one under `prism run --export jsonl:...`), each idle while the other is
measured; rounds alternate which goes first. A round sends the same greedy requests (fixed prompts, exact output
length) with bounded concurrency and counts generated tokens per second. Prints the per-round figures and the
median ratio. `--in-process` times `vllm.LLM.generate` in one process instead (the engine core and model runner
on one thread), capture installed and uninstalled in alternate rounds, and compares the fastest round of each:
the minimum is what load from other processes on a shared machine disturbs least.
Needs the interpreter of a venv with vLLM and this package (scripts/vllm-venv).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def in_process(model: str, rounds: int, batch: list[str], max_tokens: int, out: Path) -> dict[str, object]:
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    import vllm

    from prism_core.capture.bench import alternate
    from prism_core.capture.session import CaptureSession
    from prism_plugins.frameworks.vllm import VllmAdapter

    llm = vllm.LLM(model=model, dtype="bfloat16", max_model_len=512, max_num_seqs=8, enforce_eager=True, seed=0)
    params = vllm.SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True)
    session = CaptureSession.from_specs([f"jsonl:{out}"], device_id="cpu:0")
    adapter = VllmAdapter()
    tokens = len(batch) * max_tokens

    def tokens_per_s() -> float:
        start = time.perf_counter()
        llm.generate(batch, params, use_tqdm=False)
        return tokens / (time.perf_counter() - start)

    tokens_per_s()  # warm-up
    timed = alternate(session, adapter, rounds, tokens_per_s)
    session.flush()
    stats = session.collector.stats()
    session.close()
    times = {"plain": timed["without"], "prism": timed["with"]}
    best = {name: max(v) for name, v in times.items()}
    pairs = [p / q for p, q in zip(times["prism"], times["plain"], strict=True)]
    return {
        "mode": "in-process",
        "plain_tokens_per_s": times["plain"],
        "prism_tokens_per_s": times["prism"],
        "best_ratio": best["prism"] / best["plain"],
        "median_pair_ratio": statistics.median(pairs),
        "overhead_pct": (1 - best["prism"] / best["plain"]) * 100,
        "batches": stats.batches,
        "collector_cpu_us_per_batch": stats.collector_cpu_ns / 1e3 / max(1, stats.batches),
        "load_average": os.getloadavg(),
    }


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
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="prism-vllm-bench-"))
    model = a.model
    if model is None:
        from prism_plugins.frameworks.transformers.tiny import SMOLLM2_SHAPE, save_tiny_llama

        model = str(save_tiny_llama(tmp / "model", **(SMOLLM2_SHAPE if a.shape == "smollm2" else {})))
    if a.in_process:
        result = in_process(model, a.rounds, prompts(a.requests, a.prompt_words), a.max_tokens, tmp / "records.jsonl")
        print(json.dumps(result) if a.json else f"best ratio prism/plain {result['best_ratio']:.4f}")
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
