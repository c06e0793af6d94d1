"""`prism attach` on bad targets (real processes), and its Prometheus arithmetic. The real vLLM server is in
test_vllm_server.py (slow)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prism_core.cli.attach import parse_prometheus, summarise

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


def test_python_process_without_engine_metrics(python_child: int) -> None:
    result = _attach(str(python_child), "--count", "1")
    assert result.returncode == 2
    assert "serves no vLLM or SGLang metrics" in result.stderr and "--metrics-url" in result.stderr


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
