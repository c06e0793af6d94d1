"""The stage-cost bench in the server's process layout runs end to end on the real engine (figures not judged)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from vllm_helpers import vllm_env

pytestmark = pytest.mark.slow


def test_stage_cost_reaches_every_vllm_process(vllm_python: Path, tiny_model_dir: Path) -> None:
    proc = subprocess.run(
        [
            str(vllm_python),
            "-m",
            "prism_plugins.frameworks.vllm.bench",
            "--stage-cost",
            "--multiprocess",
            "--model",
            str(tiny_model_dir),
            "--rounds",
            "1",
            "--requests",
            "8",
            "--max-tokens",
            "8",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=vllm_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # The API-less main process, the engine core and one worker each loaded the probe and reported.
    assert result["mode"] == "stage-cost, multiprocess" and result["processes"] == 3
    # Each of the 8 output tokens takes a step; prompts arriving one by one over IPC can add prefill steps.
    assert 8 <= result["steps"] <= 16
    engine_core = {"Scheduler.schedule", "Scheduler.update_from_output", "MultiprocExecutor.sample_tokens"}
    assert engine_core <= set(result["prism_us_per_call"])
    assert result["collector_cpu_us_per_batch"] > 0
