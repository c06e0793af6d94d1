"""`prism run` end to end: real child processes, a real OTLP/gRPC receiver, files on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from prism_core.models import BatchRecord, RequestRecord
from prism_core.testing import OtlpReceiver

pytest.importorskip("transformers")

PROGRAM = str(Path(__file__).resolve().parent / "programs" / "generate_tiny.py")


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def test_same_tokens_exit_code_and_records(prism_cmd: list[str], tmp_path: Path) -> None:
    plain = _run([sys.executable, PROGRAM, "3"])
    jsonl, chrome = tmp_path / "r.jsonl", tmp_path / "t.json"
    run = _run(
        [
            *prism_cmd,
            "run",
            "--export",
            f"jsonl:{jsonl}",
            "--export",
            f"chrome:{chrome}",
            "--",
            sys.executable,
            PROGRAM,
            "3",
        ]
    )
    assert plain.returncode == run.returncode == 3
    assert run.stdout == plain.stdout and run.stdout.startswith("[[")
    assert "prism:" not in run.stderr
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    batches = [BatchRecord.model_validate(x) for x in lines if x["kind"] == "batch"]
    requests = [RequestRecord.model_validate(x) for x in lines if x["kind"] == "request"]
    assert [b.mode for b in batches] == ["prefill"] + ["decode"] * 5
    assert len(requests) == 2 and all(r.output_tokens == 6 for r in requests)
    assert json.loads(chrome.read_text())  # closed properly at exit


def test_otlp_grpc_to_a_real_receiver(prism_cmd: list[str]) -> None:
    with OtlpReceiver() as receiver:
        run = _run([*prism_cmd, "run", "--export", f"otlp+grpc://{receiver.address}", "--", sys.executable, PROGRAM])
        assert run.returncode == 0, run.stderr
        assert receiver.wait_for(lambda r: sum(s.name == "prism.batch" for s in r.spans) == 6)
    names = {s.name for s in receiver.spans}
    assert {"prism.stage.forward", "text_completion tiny-random-llama"} <= names


def test_bad_spec_is_one_line_and_exit_2_before_the_program(prism_cmd: list[str], tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    run = _run(
        [*prism_cmd, "run", "--export", "kafka://x:1", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "unknown export scheme 'kafka'" in run.stderr
    assert not marker.exists()


def test_unreachable_endpoint_warns_once_and_the_program_runs(prism_cmd: list[str]) -> None:
    with OtlpReceiver() as receiver:
        port = receiver.port  # a port nobody listens on once the receiver stops
    run = _run([*prism_cmd, "run", "--export", f"otlp+grpc://127.0.0.1:{port}", "--", sys.executable, PROGRAM, "5"])
    assert run.returncode == 5 and run.stdout.startswith("[[")
    assert run.stderr.count("prism: warning:") == 1 and run.stderr.count("\n") == 1, run.stderr


def test_missing_command_and_crash(prism_cmd: list[str]) -> None:
    missing = _run([*prism_cmd, "run", "--", "no-such-program-xyz"])
    assert missing.returncode == 127 and "command not found" in missing.stderr
    crash = _run([*prism_cmd, "run", "--", sys.executable, "-c", "import transformers; raise SystemExit(7)"])
    assert crash.returncode == 7


def test_existing_sitecustomize_still_runs(prism_cmd: list[str], tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['USER_SITECUSTOMIZE'] = 'ran'\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    code = "import os; print(os.environ.get('USER_SITECUSTOMIZE'))"
    run = _run([*prism_cmd, "run", "--", sys.executable, "-c", code], env=env)
    assert run.returncode == 0 and run.stdout.strip() == "ran"
