"""`prism faults synth` + `prism detect fit` + `prism detect eval` on LatencyPrism's real vLLM records."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from prism_core.detect.metrics import detection_metrics, segments


def test_labelled_set_end_to_end(vllm_csv: Path, tmp_path: Path, prism_cmd: list[str]) -> None:
    def prism(*args: str) -> dict:  # type: ignore[type-arg]
        r = subprocess.run([*prism_cmd, *args, "--json"], capture_output=True, text=True, check=True)
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    summary = prism("faults", "synth", "--records", str(vllm_csv), "--out", str(tmp_path))
    assert summary["train_rows"] + summary["eval_rows"] == 37429
    faults = summary["faults"]
    assert {f["shape"] for f in faults} == {"slowdown", "stage_delay", "ramp"}
    train, ev = str(tmp_path / "train.csv"), str(tmp_path / "eval.csv")
    prism("detect", "fit", "--records", train, "--format", "latencyprism", "--model", str(tmp_path / "m.json"))
    result = prism("detect", "eval", "--model", str(tmp_path / "m.json"), "--records", ev, "--format", "latencyprism")
    assert result["rows"] == summary["eval_rows"] and result["segments"] == len(faults)
    assert set(result["baselines"]) == {"fixed_15pct", "sigma3_raw", "ewma_raw"}
    for r in (result, *result["baselines"].values()):
        assert {"precision", "recall", "f1", "fpr", "lag"} <= set(r)
    # A workload-conditioned model must beat the workload-blind baselines on unseen jobs.
    assert result["f1"] > result["baselines"]["sigma3_raw"]["f1"]
    assert result["f1"] > result["baselines"]["ewma_raw"]["f1"]
    args = ("detect", "eval", "--model", str(tmp_path / "m.json"), "--records", ev, "--format", "latencyprism")
    recentred = prism(*args, "--recentre", "200")
    assert recentred["chart"]["recentre"] == 200 and recentred["segments"] == len(faults)
    bad = subprocess.run([*prism_cmd, *args, "--recentre", "-1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--recentre must be in" in bad.stderr


def test_detection_metrics_by_hand() -> None:
    label = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 0])
    alarm = np.array([0, 1, 0, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    assert segments(label) == [(2, 5), (7, 9)]
    m = detection_metrics(label, alarm)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 2, 3, 3)
    assert m["precision"] == 0.5 and m["recall"] == 0.4 and m["fpr"] == 0.4
    assert m["lag"] == 1.0 and m["missed_segments"] == 1
