"""Bad input to `prism detect`: one clear line on stderr, exit code 2, and nothing half-written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

VLLM_HEADER = (
    "job_name,start_ts,duration_us,batch_size,avg_input_length,max_input_length,avg_output_length,max_output_length"
)


def _row(i: int, duration: str = "30000") -> str:
    return f"job{i % 7},{i * 1000},{duration},{1 + i % 16},128,128,{i % 100},{i % 100}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        (VLLM_HEADER + "\n", "no rows"),
        ("job_name,start_ts,duration_us,batch_size\nx,1,2,3\n", "lacks column(s) avg_input_length"),
        (VLLM_HEADER + "\n" + _row(1, "nan") + "\n", "not a finite number"),
        (VLLM_HEADER + "\n" + _row(1, "-5") + "\n", "durations must be positive"),
        (VLLM_HEADER + "\n" + _row(1, "fast") + "\n", "not a number"),
    ],
)
def test_bad_records_exit_2_with_one_line(tmp_path: Path, prism_cmd: list[str], text: str, expected: str) -> None:
    records = tmp_path / "r.csv"
    records.write_text(text)
    model = tmp_path / "m.json"
    cmd = [*prism_cmd, "detect", "fit", "--records", str(records), "--format", "latencyprism", "--model", str(model)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2
    assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not model.exists() and list(tmp_path.iterdir()) == [records]


def test_model_from_another_version_exits_2(tmp_path: Path, prism_cmd: list[str]) -> None:
    model = tmp_path / "m.json"
    model.write_text(json.dumps({"format": "prism.latency_model", "schema_version": 0, "feature_spec": "old"}))
    records = tmp_path / "r.csv"
    records.write_text(VLLM_HEADER + ",label\n" + "\n".join(_row(i) + ",0" for i in range(60)) + "\n")
    cmd = [*prism_cmd, "detect", "eval", "--model", str(model), "--records", str(records), "--format", "latencyprism"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and "refit it" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_eval_without_labels_exits_2(tmp_path: Path, prism_cmd: list[str]) -> None:
    records = tmp_path / "r.csv"
    records.write_text(VLLM_HEADER + "\n" + "\n".join(_row(i) for i in range(80)) + "\n")
    model = tmp_path / "m.json"
    fit = [*prism_cmd, "detect", "fit", "--records", str(records), "--format", "latencyprism", "--model", str(model)]
    subprocess.run(fit, capture_output=True, check=True)
    ev = [*prism_cmd, "detect", "eval", "--model", str(model), "--records", str(records), "--format", "latencyprism"]
    r = subprocess.run(ev, capture_output=True, text=True)
    assert r.returncode == 2 and "no 'label' column" in r.stderr
