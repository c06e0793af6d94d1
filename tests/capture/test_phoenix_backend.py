"""A real trace backend: `prism run` exports to Arize Phoenix over OTLP/gRPC and OTLP/HTTP; spans read back by REST.

Phoenix lives in its own virtual environment made by scripts/phoenix-venv (about 75 s and 0.9 GB the first time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prism_core.testing.otlp import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = str(Path(__file__).resolve().parent / "programs" / "generate_tiny.py")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    pytest.importorskip("transformers")
    made = subprocess.run([str(ROOT / "scripts" / "phoenix-venv")], capture_output=True, text=True, timeout=900)
    if made.returncode != 0:
        pytest.skip(f"the Phoenix venv could not be created: {made.stderr.strip()[-300:]}")
    venv = Path(made.stdout.strip().splitlines()[-1])
    ports = {"http": free_port(), "grpc": free_port()}
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(tmp_path_factory.mktemp("phoenix")),
        "PHOENIX_PORT": str(ports["http"]),
        "PHOENIX_GRPC_PORT": str(ports["grpc"]),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = tmp_path_factory.mktemp("phoenix-log") / "phoenix.log"
    with log.open("w") as out:
        server = subprocess.Popen([str(venv / "bin" / "phoenix"), "serve"], env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(f"http://127.0.0.1:{ports['http']}/v1/projects")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"phoenix did not start: {log.read_text()[-1500:]}")
                time.sleep(0.5)
        yield ports
    finally:
        server.terminate()
        server.wait(30)


def _spans(port: int, project: str) -> list[dict[str, Any]]:
    try:
        return list(_get(f"http://127.0.0.1:{port}/v1/projects/{project}/spans?limit=1000")["data"])
    except OSError:
        return []  # the project appears with its first span


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_spans_arrive_intact(phoenix: dict[str, int], protocol: str, prism_cmd: list[str]) -> None:
    project = f"prism-{protocol}"
    env = {**os.environ, "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}"}
    spec = f"otlp+{protocol}://127.0.0.1:{phoenix[protocol]}"
    run = subprocess.run(
        [*prism_cmd, "run", "--export", spec, "--", sys.executable, PROGRAM],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert run.returncode == 0 and "prism:" not in run.stderr, run.stderr
    deadline = time.monotonic() + 30
    spans = _spans(phoenix["http"], project)
    while sum(s["name"] == "prism.batch" for s in spans) < 6 and time.monotonic() < deadline:
        time.sleep(0.5)
        spans = _spans(phoenix["http"], project)
    batches = [s for s in spans if s["name"] == "prism.batch"]
    assert len(batches) == 6
    ids = {s["context"]["span_id"] for s in batches}
    stages = [s for s in spans if s["name"].startswith("prism.stage.")]
    assert len(stages) == 24 and all(s["parent_id"] in ids for s in stages)
    assert {s["name"] for s in stages} == {
        f"prism.stage.{x}" for x in ("prepare_inputs", "forward", "sample", "postprocess")
    }
    modes = sorted(s["attributes"]["prism.batch.mode"] for s in batches)
    assert modes == ["decode"] * 5 + ["prefill"]
    assert all(s["attributes"]["prism.batch.size"] == 2 for s in batches)
    requests = [s for s in spans if s["name"] == "text_completion tiny-random-llama"]
    assert len(requests) == 2
    attributes = requests[0]["attributes"]
    assert attributes["gen_ai.usage.output_tokens"] == 6 and attributes["gen_ai.usage.input_tokens"] == 8
    assert attributes["gen_ai.operation.name"] == "text_completion"
