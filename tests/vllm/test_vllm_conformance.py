"""The vLLM adapter's conformance suite and workload checks, run inside the vLLM venv against a real engine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from vllm_helpers import PROGRAMS, vllm_env

pytestmark = pytest.mark.slow


def test_conformance_in_vllm_venv(vllm_python: Path, tiny_model_dir: Path) -> None:
    proc = subprocess.run(
        [str(vllm_python), str(PROGRAMS / "vllm_conformance.py"), str(tiny_model_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        env=vllm_env(),
        check=False,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    assert "6 passed" in proc.stdout, tail  # 4 conformance tests and 2 of the adapter's own
