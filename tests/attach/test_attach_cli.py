"""`prism attach` on bad targets (real processes), and its Prometheus arithmetic. The real vLLM server is in
tests/vllm/test_vllm_server.py (slow), the transformers server in test_attach_sampling.py."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prism_core.attach.metrics import parse_prometheus, summarise
from prism_core.attach.sampling import sampler
from prism_core.attach.target import engine_candidates, python_descendants

PRISM = Path(sys.executable).parent / "prism"


def _attach(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PRISM), "attach", *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def python_child() -> Iterator[int]:
    """A Python process that listens on no port."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(0.2)
    yield proc.pid
    proc.kill()
    proc.wait()


def test_no_such_process_is_one_line() -> None:
    result = _attach("999999999")
    assert result.returncode == 2
    assert result.stderr.strip() == "prism: error: no process with id 999999999"


def test_not_a_python_process() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        result = _attach(str(proc.pid))
    finally:
        proc.kill()
        proc.wait()
    assert result.returncode == 2 and "is not a Python process" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(sampler() is None, reason="py-spy is not installed (pip install 'prism-xpu[attach]')")
def test_python_process_that_is_no_engine(python_child: int) -> None:
    result = _attach(str(python_child), "--count", "1", "--interval", "1")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "serves no engine metrics and ran none of the engine functions Prism knows" in result.stderr
    assert "transformers" in result.stderr and "vllm" in result.stderr


def test_metrics_only_without_an_endpoint(python_child: int) -> None:
    result = _attach(str(python_child), "--count", "1", "--no-sample")
    assert result.returncode == 2
    assert "serves no vLLM or SGLang metrics and --no-sample" in result.stderr and "--metrics-url" in result.stderr


def test_metrics_url_that_does_not_answer(python_child: int) -> None:
    result = _attach(str(python_child), "--count", "1", "--no-sample", "--metrics-url", "http://127.0.0.1:9/metrics")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "cannot read engine metrics from http://127.0.0.1:9/metrics" in result.stderr


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="this interpreter can be injected into")
def test_older_python_cannot_be_injected_or_detached(python_child: int) -> None:
    detach = _attach(str(python_child), "--detach")
    assert detach.returncode == 2
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"nothing to detach: process {python_child} runs Python {version}" in detach.stderr
    export = _attach(str(python_child), "--export", "chrome:/tmp/x.json")
    assert export.returncode == 2
    assert "from outside, prism attach exports to otlp, otlp+grpc, otlp+http, jsonl only, not chrome" in export.stderr


@pytest.mark.parametrize("flag", ["--interval", "--rate", "--timeout"])
def test_non_positive_settings(python_child: int, flag: str) -> None:
    result = _attach(str(python_child), flag, "0")
    assert result.returncode == 2 and result.stderr.strip() == f"prism: error: {flag} must be positive"


def test_means_between_scrapes() -> None:
    page = """# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
vllm:e2e_request_latency_seconds_sum{model_name="a"} 3.0
vllm:e2e_request_latency_seconds_count{model_name="a"} 2.0
vllm:e2e_request_latency_seconds_sum{model_name="b"} 1.0
vllm:e2e_request_latency_seconds_count{model_name="b"} 2.0
vllm:time_to_first_token_seconds_sum{model_name="a"} 0.4
vllm:time_to_first_token_seconds_count{model_name="a"} 4.0
vllm:num_requests_running{model_name="a"} 3.0
"""
    before = parse_prometheus(page)
    assert before["vllm:e2e_request_latency_seconds_count"] == 4.0
    since = summarise("vllm", before, None)
    assert since["requests"] == 4 and since["e2e_s_mean"] == 1.0 and since["running"] == 3.0
    assert since["ttft_s_mean"] == pytest.approx(0.1) and since["tpot_s_mean"] is None
    after = dict(before, **{"vllm:e2e_request_latency_seconds_count": 5.0, "vllm:e2e_request_latency_seconds_sum": 6.0})
    window = summarise("vllm", after, before)
    assert window["requests"] == 1 and window["e2e_s_mean"] == 2.0 and window["ttft_s_mean"] is None


def test_injection_targets_skip_multiprocessing_helpers(tmp_path: Path) -> None:
    """A server that spawns a worker gets multiprocessing's resource tracker too: a Python child blocked in C,
    where an injected script would never run. It is not a target; the spawned worker is."""
    program = tmp_path / "server.py"
    program.write_text(
        "import multiprocessing as mp, sys, time\n"
        "def work():\n    time.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    ctx = mp.get_context('spawn')\n"
        "    lock = ctx.Lock()  # a named semaphore: starts the resource tracker\n"
        "    ctx.Process(target=work, daemon=True).start()\n"
        "    print('READY', flush=True)\n"
        "    time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, str(program)], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        try:
            everything = python_descendants(proc.pid)
            targets = engine_candidates(proc.pid)
            commands = {p: Path(f"/proc/{p}/cmdline").read_bytes().decode() for p in everything}
            assert any("resource_tracker" in c for c in commands.values())
            assert targets[0] == proc.pid and len(targets) == 2  # the server and its spawned worker
            assert all("resource_tracker" not in commands[p] for p in targets)
        finally:
            proc.kill()
