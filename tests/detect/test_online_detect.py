"""Online detection end to end: `prism run --detect` around a real tiny-Llama program, the real cpu.stage_delay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from prism_core.bootstrap.detect import parse_chart
from prism_core.detect.chart import ChartConfig
from prism_core.errors import UsageError

pytest.importorskip("transformers")
pytest.importorskip("lightgbm")

PROGRAM = Path(__file__).with_name("stage_delay_program.py")


@pytest.mark.slow
def test_alert_with_diagnosis_naming_the_delayed_stage(tmp_path: Path, prism_cmd: list[str]) -> None:
    records, onset_file, alerts = tmp_path / "r.jsonl", tmp_path / "onset.json", tmp_path / "alerts"
    cmd = [
        *prism_cmd,
        "run",
        "--detect",
        "--warmup",
        "120",
        "--escalate",
        "30",
        "--deep",
        "5",
        "--alerts-out",
        str(alerts),
        "--stage-faults",
        "--export",
        f"jsonl:{records}",
        "--",
        sys.executable,
        str(PROGRAM),
        "24",
        "6",
        str(onset_file),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "learning from the first 120 decode batches" in r.stderr
    truth = json.loads(onset_file.read_text())
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    batches = [x for x in lines if x["kind"] == "batch"]
    assert any(b["start_ns"] >= truth["onset_ns"] for b in batches)
    # The alert raised by the fault, then the same alert again carrying its diagnosis.
    fired = [x for x in lines if x["kind"] == "alert" and truth["onset_ns"] <= x["batch_start_ns"] < truth["end_ns"]]
    assert fired, [x["message"] for x in lines if x["kind"] == "alert"]
    diagnosed = [x for x in fired if x["suspects"]]
    # The delay is a sleep: the engine thread is off the CPU for it.
    assert diagnosed and diagnosed[0]["suspects"][0].startswith("forward (off-cpu) x ")
    assert "diagnosis: forward (off-cpu) x " in diagnosed[0]["message"]
    windows = sorted(set(alerts.glob("alert-*.trace.json")) - set(alerts.glob("*.ops.trace.json")))
    assert windows and not list(alerts.glob("*.part"))
    events = json.loads(windows[-1].read_text())
    assert any(e.get("ph") == "X" and e.get("tid") == 1 for e in events)  # batch slices of the window
    # After the diagnosis, operator timing (torch.profiler) of the next --deep batches, stages as ranges.
    assert "deep capture: operator timing of the next 5 batches" in r.stderr
    ops = sorted(alerts.glob("alert-*.ops.trace.json"))
    assert ops, sorted(p.name for p in alerts.iterdir())
    names = {e.get("name") for e in json.loads(ops[0].read_text())["traceEvents"]}
    assert "forward" in names and any(str(n).startswith("aten::") for n in names)


def test_detect_flags_are_checked_before_the_program_runs(tmp_path: Path, prism_cmd: list[str]) -> None:
    marker = tmp_path / "ran"
    program = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    bad_model = tmp_path / "m.json"
    bad_model.write_text(json.dumps({"format": "prism.latency_model", "schema_version": 0, "feature_spec": "old"}))
    for flags, expected in (
        (["--detect", "--model", str(bad_model)], "refit it"),
        (["--detect", "--alert-sink", "pager"], "unknown alert sink 'pager'"),
        (["--warmup", "50"], "need --detect"),
        (["--detect", "--warmup", "3"], "at least 10"),
        (["--detect", "--deep", "-1"], "PRISM_DETECT_DEEP='-1': must be at least 0"),
        (["--deep", "5"], "need --detect"),
        (["--chart", "point"], "need --detect"),
        (["--detect", "--chart", "point,run=0"], "--run must be in 1..100"),
        (["--detect", "--chart", "point,z=1"], "'z=1' is not one of w=, k=, run="),
        (["--detect", "--chart", "spiral"], "chart mode must be point or window"),
    ):
        r = subprocess.run([*prism_cmd, "run", *flags, "--", *program], capture_output=True, text=True)
        assert r.returncode == 2 and expected in r.stderr, (flags, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_chart_spec_of_prism_run_detect() -> None:
    assert parse_chart("") == ChartConfig()
    assert parse_chart("point,k=3,run=2") == ChartConfig(mode="point", k=3.0, run=2)
    assert parse_chart(" window , w=5, theta_min=0.1") == ChartConfig(mode="window", window=5, theta_min=0.1)
    with pytest.raises(UsageError, match="k must be a number"):
        parse_chart("point,k=high")
