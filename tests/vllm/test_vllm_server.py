"""vLLM's OpenAI server, unchanged, under `prism run` and with PRISM_ENABLE=1: records, and the same tokens.

Three servers start side by side once for the module (plain, `prism run --export jsonl:...`, and PRISM_ENABLE=1
through vLLM's general-plugin entry point), each gets the same greedy completions over real HTTP on 127.0.0.1,
then each is stopped so its exporters flush.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from vllm_helpers import vllm_env

from prism_core.export.files import read_jsonl
from prism_core.loopback import free_port
from prism_core.models import BatchRecord, Record, RequestRecord
from prism_plugins.frameworks.vllm.serve import Server, server_command

pytestmark = pytest.mark.slow

PROMPTS = ["the quick brown fox", "a server batches requests and streams tokens", "latency per stage", "time"]
MAX_TOKENS = 6
# vLLM's CPU server runs the model in a worker process: the engine core's records have no prepare_inputs split
# (in-process engines do; the conformance program checks those).
STAGES = {"schedule", "forward", "sample", "postprocess"}


@dataclass
class Served:
    tokens: list[list[int]]
    records: list[Record]
    attach: dict[str, Any] | None
    exit_code: int
    log: str


def _ask(server: Server) -> list[list[int]]:
    with ThreadPoolExecutor(len(PROMPTS)) as pool:  # concurrent, so the engine batches them
        responses: list[dict[str, Any]] = list(pool.map(lambda p: server.complete(p, MAX_TOKENS), PROMPTS))
    return [list(r["choices"][0]["token_ids"]) for r in responses]


def _attach(pid: int) -> dict[str, Any]:
    """`prism attach PID` (this venv's prism) on a running server: one report from its metrics endpoint."""
    prism = Path(sys.executable).parent / "prism"
    command = [str(prism), "attach", str(pid), "--interval", "0.2", "--count", "1", "--json"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.splitlines()[-1]))


@pytest.fixture(scope="module")
def served(vllm_python: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Served]:
    tmp = tmp_path_factory.mktemp("vllm-serve")
    prism = vllm_python.parent / "prism"
    jsonl = {"prism_run": tmp / "run.jsonl", "enable": tmp / "enable.jsonl"}
    servers: dict[str, Server] = {}
    for name in ("plain", "prism_run", "enable"):
        port = free_port()
        # A clean shutdown (not vLLM's default immediate SIGKILL of the engine core) lets its exporters flush.
        command = server_command(vllm_python, tiny_model_dir, port, "--shutdown-timeout", "20")
        env = vllm_env()
        if name == "prism_run":
            command = [str(prism), "run", "--export", f"jsonl:{jsonl[name]}", "--", *command]
        elif name == "enable":
            env.update(PRISM_ENABLE="1", PRISM_EXPORT=f"jsonl:{jsonl[name]}")
        servers[name] = Server.start(command, env, tmp / f"{name}.log", port, str(tiny_model_dir))
    try:
        for server in servers.values():
            server.wait_ready()
        tokens = {name: _ask(server) for name, server in servers.items()}
        attach = _attach(servers["plain"].proc.pid)
    finally:
        codes = {name: server.stop() for name, server in servers.items()}
    return {
        name: Served(
            tokens[name],
            read_jsonl(jsonl[name]) if name in jsonl and jsonl[name].exists() else [],
            attach if name == "plain" else None,
            codes[name],
            server.tail(),
        )
        for name, server in servers.items()
    }


def test_same_tokens_with_and_without_prism(served: dict[str, Served]) -> None:
    plain = served["plain"].tokens
    assert [len(t) for t in plain] == [MAX_TOKENS] * len(PROMPTS)
    assert served["prism_run"].tokens == plain
    assert served["enable"].tokens == plain


@pytest.mark.parametrize("how", ["prism_run", "enable"])
def test_batches_and_requests_recorded(served: dict[str, Served], how: str, tiny_model_dir: Path) -> None:
    result = served[how]
    batches = [r for r in result.records if isinstance(r, BatchRecord)]
    requests = [r for r in result.records if isinstance(r, RequestRecord)]
    assert batches, f"no batch records; server log: {result.log}"
    assert all(b.engine == "vllm" and b.model == str(tiny_model_dir) for b in batches)
    assert {b.mode for b in batches} >= {"prefill", "decode"}
    assert set().union(*(b.stages for b in batches)) >= STAGES
    assert all(sum(s.wall_ns for s in b.stages.values()) <= b.duration_ns for b in batches)
    # Health probes and warm-up never reach the scheduler: every generated token is in some batch.
    assert sum(b.prefill_tokens for b in batches) >= len(PROMPTS)
    assert sum(b.decode_tokens for b in batches) == len(PROMPTS) * (MAX_TOKENS - 1)
    assert len({b.pid for b in batches}) == 1, "one engine core process"
    assert len(requests) == len(PROMPTS)
    for r in requests:
        assert r.output_tokens == MAX_TOKENS and r.finish_reason == "length"
        assert r.ttft_s is not None and r.queue_s <= r.ttft_s <= r.e2e_s
        assert r.tpot_s is not None and r.tpot_s > 0


def test_attach_reads_the_running_server_metrics(served: dict[str, Served]) -> None:
    report = served["plain"].attach
    assert report is not None and report["engine"] == "vllm"
    since = report["since_start"]
    assert since["requests"] == len(PROMPTS)
    assert 0 < since["ttft_s_mean"] <= since["e2e_s_mean"]
    assert since["tpot_s_mean"] > 0 and since["queue_s_mean"] >= 0
    assert since["running"] == 0 and 0 <= since["kv_cache_usage"] <= 1
    assert report["interval"]["requests"] == 0  # nothing was sent while attached
    assert "no per-batch timings" in report["missing"]
