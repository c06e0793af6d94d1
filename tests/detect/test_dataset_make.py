"""`prism dataset make` on the real transformers engine: labelled records, the fault timeline, nothing half-made."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from statistics import median

import pytest

from prism_core.detect.table import read_table
from prism_core.settings import data_dir

pytest.importorskip("transformers")

TRACE = data_dir() / "azure_llm_2023_code.csv"


@pytest.fixture
def trace() -> Path:
    if not TRACE.is_file():
        pytest.skip(f"Azure trace not found at {TRACE} (shared/ beside the checkout)")
    return TRACE


@pytest.mark.slow
def test_make_labels_the_fault_window(tmp_path: Path, prism_cmd: list[str], trace: Path) -> None:
    out = tmp_path / "set"
    cmd = [
        *prism_cmd,
        "dataset",
        "make",
        "--trace",
        str(trace),
        "--faults",
        "cpu.stage_delay:0.6",
        "--lead",
        "4",
        "--fault-s",
        "3",
        "--gap",
        "1",
        "--tail",
        "1",
        "--out",
        str(out),
        "--json",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads(r.stdout)
    assert sorted(p.name for p in out.iterdir()) == [
        "batches.csv",
        "batches.jsonl",
        "eval.csv",
        "faults.jsonl",
        "meta.json",
        "telemetry.jsonl",
        "train.csv",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["set"]  # the work folder was renamed, not left beside
    (event,) = [json.loads(line) for line in (out / "faults.jsonl").read_text().splitlines()]
    assert event["name"] == "cpu.stage_delay" and event["params"]["delay_s"] == "0.03"
    lines = [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]
    assert len(lines) == meta["batches"] and sum(x["label"] for x in lines) == meta["abnormal"] > 0
    assert meta["threads"] == 1  # one engine thread: the other cores stay free for the host's own work
    samples = [json.loads(line) for line in (out / "telemetry.jsonl").read_text().splitlines()]
    assert len(samples) == meta["telemetry_samples"] > 10 and "system.cpu.utilization" in samples[0]["values"]
    for x in lines:
        overlaps = x["start_ns"] < event["end_ns"] and event["onset_ns"] < x["start_ns"] + x["duration_ns"]
        assert x["label"] == int(overlaps)
    # The 30 ms slept in `forward` is in the abnormal batches' forward stage, not in the normal ones'.
    fwd = {lab: [x["stages"]["forward"]["wall_ns"] for x in lines if x["label"] == lab] for lab in (0, 1)}
    assert median(fwd[1]) - median(fwd[0]) > 20e6
    with (out / "batches.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(lines) and {r["label"] for r in rows} == {"0", "1"}
    table = read_table(out / "eval.csv")
    assert table.label is not None and table.label.sum() == meta["abnormal"]
    assert read_table(out / "train.csv").label.sum() == 0  # type: ignore[union-attr]
    # The set's own fault timeline breaks detection down by fault: how much it slowed the engine, what was caught.
    pytest.importorskip("lightgbm")
    model = str(tmp_path / "m.json")
    fit = [*prism_cmd, "detect", "fit", "--records", str(out / "train.csv"), "--model", model, "--json"]
    subprocess.run(fit, capture_output=True, check=True)
    ev = [*prism_cmd, "detect", "eval", "--model", model, "--records", str(out / "eval.csv"), "--json"]
    result = json.loads(subprocess.run([*ev, "--faults", str(out / "faults.jsonl")], capture_output=True,
                                       text=True, check=True).stdout)  # fmt: skip
    (by_fault,) = result["by_fault"]
    assert by_fault["fault"] == "cpu.stage_delay" and by_fault["intensity"] == 0.6
    assert by_fault["batches"] == sum(1 for x in lines if x["label"] and x["mode"] == "decode")
    assert by_fault["latency_ratio"] > 2  # 30 ms slept in batches the model predicts at a few ms
    assert by_fault["recall"] > 0.5 and by_fault["lag"] is not None
    bad = subprocess.run([*ev, "--faults", str(out / "batches.csv")], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a fault timeline" in bad.stderr and len(bad.stderr.splitlines()) == 1
    # Diagnosis by fault on the same set: the sleep in `forward` is time off the CPU.
    script = Path(__file__).parents[2] / "benchmarks" / "diagnosis_by_fault.py"
    report = json.loads(subprocess.run([sys.executable, str(script), str(out), "--json"], capture_output=True,
                                       text=True, check=True).stdout)  # fmt: skip
    (diagnosed,) = report["faults"]
    top = diagnosed["suspects"][0]
    assert top["where"] == "forward (off-cpu)" and top["significant"] and top["resource"] != "(no telemetry)"


def test_make_refuses_a_used_folder_and_unknown_faults(tmp_path: Path, prism_cmd: list[str], trace: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    base = [*prism_cmd, "dataset", "make", "--trace", str(trace)]
    for extra, expected in (
        (["--faults", "cpu.stage_delay", "--out", str(used)], "not an empty folder"),
        (["--faults", "cpu.nope", "--out", str(tmp_path / "new")], "unknown fault 'cpu.nope'"),
        (["--faults", "cpu.stage_delay:2", "--out", str(tmp_path / "new")], "intensity must be in (0, 1]"),
        (["--faults", "cpu.stage_delay", "--threads", "0", "--out", str(tmp_path / "new")], "--threads must be"),
    ):
        r = subprocess.run([*base, *extra], capture_output=True, text=True)
        assert r.returncode == 2 and expected in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["used"]
    assert [p.name for p in used.iterdir()] == ["keep.txt"]
