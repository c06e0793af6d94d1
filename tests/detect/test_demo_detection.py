"""`prism demo` with its detection act: a fault mid-run, the detector's control chart, the fault's ground truth."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("lightgbm")


@pytest.mark.slow
def test_demo_injects_a_fault_and_charts_the_detector(prism_cmd: list[str], tmp_path: Path) -> None:
    out = tmp_path / "report"
    cmd = [
        *prism_cmd,
        "demo",
        "--out",
        str(out),
        "--model",
        "tiny",
        "--requests",
        "40",
        "--duration",
        "6",
        "--warmup",
        "40",
        "--fault",
        "cpu.stage_delay:1",
        "--fault-at",
        "4",
        "--fault-s",
        "3",
        "--no-live",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "fault: cpu.stage_delay at intensity 1.0" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fault"]["name"] == "cpu.stage_delay"
    assert summary["fault"]["end_ns"] > summary["fault"]["onset_ns"]
    (event,) = [json.loads(line) for line in (out / "faults.jsonl").read_text().splitlines()]
    assert event["params"]["delay_s"] == "0.05"
    assert summary["detector"]["warmup_batches"] == 40
    assert (out / "control_chart.png").read_bytes()[:4] == b"\x89PNG"
    if summary["detector"]["alerts"]:
        assert "ALERT" in r.stdout
        alerts = [x for x in map(json.loads, (out / "records.jsonl").read_text().splitlines()) if x["kind"] == "alert"]
        assert alerts  # alerts are Records: the demo's jsonl export carries them too


def test_demo_refuses_an_unknown_fault(prism_cmd: list[str], tmp_path: Path) -> None:
    r = subprocess.run(
        [*prism_cmd, "demo", "--out", str(tmp_path / "r"), "--fault", "cpu.nope"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "unknown fault 'cpu.nope'" in r.stderr
    assert not (tmp_path / "r").exists()
