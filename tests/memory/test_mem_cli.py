"""`prism mem` and `prism bench memory` as a user runs them: real subprocesses, a real ledger."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from prism_core.memory import Broker, Member
from prism_core.memory.broker import ENV_DIR, ledger_path

MIB = 2**20


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    return {**os.environ, ENV_DIR: str(tmp_path)}


@pytest.fixture
def member(env: dict[str, str]) -> Iterator[Member]:
    broker = Broker("cpu:0", 256 * MIB)
    m = broker.register("llama", min_bytes=8 * MIB, priority=2)
    m.acquire(16 * MIB)
    yield m
    m.close()
    broker.close()


def run(prism_cmd: list[str], env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prism_cmd, *args], env=env, capture_output=True, text=True, timeout=120)


def test_ls_shows_the_ledger(prism_cmd: list[str], env: dict[str, str], member: Member) -> None:
    out = run(prism_cmd, env, "mem", "ls", "--json")
    assert out.returncode == 0, out.stderr
    (ledger,) = json.loads(out.stdout)["ledgers"]
    assert ledger["device"] == "cpu:0" and ledger["capacity_bytes"] == 256 * MIB
    (model,) = ledger["models"]
    assert (model["name"], model["held_bytes"], model["priority"]) == ("llama", 16 * MIB, 2)
    assert model["pid"] == os.getpid()
    text = run(prism_cmd, env, "mem", "ls")
    assert text.returncode == 0 and "llama" in text.stdout


def test_limit_edits_the_live_model(prism_cmd: list[str], env: dict[str, str], member: Member) -> None:
    out = run(prism_cmd, env, "mem", "limit", "llama", "--max", "10MiB", "--priority", "7", "--json")
    assert out.returncode == 0, out.stderr
    (model,) = json.loads(out.stdout)["models"]
    assert (model["max_bytes"], model["priority"], model["reclaim_bytes"]) == (10 * MIB, 7, 6 * MIB)
    assert member.reclaim_requested() == 6 * MIB, "the model sees the ask through shared memory"


def test_bad_input_is_one_line_and_exit_2(prism_cmd: list[str], env: dict[str, str], member: Member) -> None:
    for args in (
        ("mem", "limit", "llama", "--min", "1TiB"),
        ("mem", "limit", "ghost", "--max", "1MiB"),
        ("mem", "limit", "llama", "--max", "ten"),
        ("mem", "ls", "--device", "nvidia:7"),
    ):
        out = run(prism_cmd, env, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    path = ledger_path("cpu:0")
    raw = bytearray(path.read_bytes())
    raw[8] = 9  # another ledger version
    path.write_bytes(bytes(raw))
    out = run(prism_cmd, env, "mem", "ls")
    assert out.returncode == 2 and "version" in out.stderr


def test_watch_prints_one_json_line_per_refresh(prism_cmd: list[str], env: dict[str, str], member: Member) -> None:
    out = run(prism_cmd, env, "mem", "watch", "--json", "--count", "2", "--interval", "0.05")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 2 and lines[1]["ledgers"][0]["models"][0]["name"] == "llama"


@pytest.mark.slow
def test_bench_memory_prints_measured_keys(prism_cmd: list[str], env: dict[str, str]) -> None:
    out = run(prism_cmd, env, "bench", "memory", "--quick", "--json")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    for key in ("map_us_p50", "map_us_p99", "unmap_us_p50", "alloc_blocks_per_s", "reclaim_ms", "reclaim_fresh_ms"):
        assert figures[key] > 0, key
    assert figures["elastic_vs_static_tokens_ratio"] > 0 and figures["elastic_same_tokens"] is True
    assert figures["bursts_pool_peak_bytes"] < figures["bursts_static_split_bytes"]
