"""`prism attach` from outside (py-spy stack samples) on a real transformers continuous-batching server, checked
against the stage timings Prism records inside the same process (`prism run`) over the same seconds."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prism_core.attach.sampling import engine_threads, sampler
from prism_core.capture.stages import CANONICAL_STAGES, FORWARD, POSTPROCESS, SCHEDULE
from prism_core.export import names
from prism_core.export.receiver import OtlpReceiver
from prism_plugins.frameworks.transformers.adapter import TransformersAdapter
from prism_plugins.frameworks.transformers.continuous import ContinuousInstrumentation

pytest.importorskip("transformers")
PRISM = Path(sys.executable).parent / "prism"
PROGRAM = Path(__file__).parent / "programs" / "serve_tiny.py"
needs_py_spy = pytest.mark.skipif(sampler() is None, reason="py-spy is not installed (pip install 'prism-xpu[attach]')")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """The server under `prism run` (stage timings to JSONL), up and serving."""
    jsonl = tmp_path / "run.jsonl"
    command = [str(PRISM), "run", "--export", f"jsonl:{jsonl}", "--", sys.executable, str(PROGRAM), "15"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "READY", f"server did not start: {line!r}"
        yield proc, jsonl
        proc.kill()


def _measured_shares(jsonl: Path, start_ns: int, end_ns: int) -> dict[str, float]:
    totals = dict.fromkeys(CANONICAL_STAGES, 0)
    for line in jsonl.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "batch" and start_ns <= record["start_ns"] <= end_ns:
            for stage, timing in record["stages"].items():
                totals[stage] += timing["wall_ns"]
    whole = sum(totals.values())
    return {s: v / whole for s, v in totals.items()}


@needs_py_spy
def test_sampled_stage_shares_match_the_recorded_ones(server: tuple[subprocess.Popen[str], Path]) -> None:
    proc, jsonl = server
    start_ns = time.time_ns()
    attach = [str(PRISM), "attach", str(proc.pid), "--interval", "4", "--count", "1", "--json"]
    result = subprocess.run(attach, capture_output=True, text=True, timeout=120, check=False)
    end_ns = time.time_ns()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["metrics_url"] is None and report["since_start"] is None
    assert "no request latencies" in report["missing"] and "no per-batch timings" in report["missing"]
    [thread] = report["stages"]  # one engine loop thread, in the server itself
    assert thread["pid"] == proc.pid and thread["samples"] >= 200
    shares = thread["shares"]
    # Only forward is sure to be sampled: schedule and postprocess take 0.5-2% of this loop, so 4 s of samples on a
    # loaded machine can hold none of them (a CI run saw no postprocess sample). Their shares are checked below.
    assert set(shares) <= set(CANONICAL_STAGES) and FORWARD in shares
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert proc.wait(timeout=120) == 0  # the server ends its replay; its exporter writes at exit
    measured = _measured_shares(jsonl, start_ns, end_ns)
    assert measured[FORWARD] > 0
    for stage in (FORWARD, SCHEDULE, POSTPROCESS):
        assert shares.get(stage, 0.0) == pytest.approx(measured[stage], abs=0.15), (stage, shares, measured)


@needs_py_spy
def test_reports_go_out_as_otlp_gauges_and_json_lines(
    server: tuple[subprocess.Popen[str], Path], tmp_path: Path
) -> None:
    proc, _ = server
    lines = tmp_path / "attach.jsonl"
    with OtlpReceiver() as receiver:
        attach = [str(PRISM), "attach", str(proc.pid), "--interval", "2", "--count", "2"]
        attach += ["--export", f"otlp+grpc://{receiver.address}", "--export", f"jsonl:{lines}"]
        result = subprocess.run(attach, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert receiver.wait_for(lambda r: sum(m.name == names.PRISM_ATTACH_STAGE_SHARE for m in r.metrics) >= 2)
        shares = [m for m in receiver.metrics if m.name == names.PRISM_ATTACH_STAGE_SHARE]
    assert shares[0].kind == "gauge" and shares[0].unit == "1"
    points = {_attr(p, names.PRISM_STAGE): p["asDouble"] for p in shares[-1].points}
    assert {FORWARD, SCHEDULE} <= set(points) and points[FORWARD] > 0.3
    assert all(_attr(p, names.PRISM_PID) == str(proc.pid) for p in shares[-1].points)
    reports = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(reports) == 2 and reports[-1]["stages"][0]["shares"][FORWARD] > 0.3


def _attr(point: dict[str, Any], key: str) -> Any:
    """An attribute of a metric point as protobuf's JSON form gives it (ints as strings)."""
    value = next(a["value"] for a in point["attributes"] if a["key"] == key)
    return next(iter(value.values()))


def test_sampled_stages_name_the_patched_functions() -> None:
    """The qualname table the sampler uses and the functions the adapter patches are the same set."""
    patched = {f"{owner.__qualname__}.{name}": stage for owner, name, stage in ContinuousInstrumentation.targets()}
    assert patched.items() <= TransformersAdapter.sampled_stages.items()
    assert set(TransformersAdapter.sampled_stages) - set(patched) <= {
        "ContinuousBatchingAsyncIOs.prepare_batch_tensors"
    }


def test_vllm_sampled_stages_are_its_patch_points() -> None:
    """vLLM is not installed here, but its patch table is plain data: the sampler's table names the same points."""
    from prism_core.capture.patching import Patcher
    from prism_plugins.frameworks.vllm.engine import SAMPLED_STAGES, EngineInstrumentation

    patched = {
        f"{cls}.{attr}" for points in EngineInstrumentation(Patcher()).points().values() for cls, attr, _ in points
    }
    # The engine core's `log_error_detail` block is the in-process forward; from outside it is the executor's call.
    assert set(SAMPLED_STAGES) - patched == {"MultiprocExecutor.execute_model"}
    assert patched - set(SAMPLED_STAGES) == {"EngineCore.log_error_detail"}


def test_raw_stacks_innermost_named_frame_wins() -> None:
    stages = {"Proc.step": FORWARD, "Runner.sample": "sample"}
    main = 'process 7:"python serve.py";thread (7): MainThread;<module> (s.py:1)'
    raw = "\n".join(
        [
            f"{main};Proc.step (s.py:3) 6",
            f"{main};Proc.step (s.py:3);Runner.sample (r.py:9) 2",
            f"{main};time.sleep (t.py:1) 2",
            'process 7:"python serve.py";thread (9): Idle;<module> (s.py:1);wait (t.py:1) 50',
            'process 7:"python serve.py";thread (0x1f);<module> (s.py:1);Proc.step (s.py:3) 1',
        ]
    )
    thread, unnamed = engine_threads(raw, stages)  # the idle thread never entered a stage
    assert (thread.pid, thread.tid, thread.name, thread.samples) == (7, 7, "MainThread", 10)
    assert (unnamed.tid, unnamed.name, unnamed.samples) == (31, "", 1)
    assert thread.busy == pytest.approx(0.8) and thread.shares() == {FORWARD: 0.75, "sample": 0.25}
