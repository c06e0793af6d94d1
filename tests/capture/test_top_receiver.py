"""`prism top otlp+grpc://HOST:PORT` as a real receiver for a real `prism run`, and the span read-back it uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prism_core.export.readback import SpanRecords
from prism_core.models import BatchRecord, Record, RequestRecord
from prism_core.plugins import PluginHost
from prism_core.testing import OtlpReceiver
from prism_core.testing.otlp import free_port, wait_listening

PROGRAM = str(Path(__file__).resolve().parent / "programs" / "generate_tiny.py")


def test_exported_spans_read_back_into_the_same_records(builtin_host: PluginHost) -> None:
    from test_otel_export import BATCH, REQUEST  # the records the export test sends

    got: list[Record] = []
    with OtlpReceiver(keep_spans=False, on_spans=SpanRecords(got.extend)) as receiver:
        exporter = builtin_host.exporter(f"otlp+grpc://{receiver.address}")
        exporter.export([BATCH, REQUEST])
        exporter.close()
        assert receiver.wait_for(lambda r: r.span_count >= 4)
    batch = next(r for r in got if isinstance(r, BatchRecord))
    request = next(r for r in got if isinstance(r, RequestRecord))
    assert batch == BATCH
    assert request.model_copy(update={"e2e_s": REQUEST.e2e_s}) == REQUEST and abs(request.e2e_s - REQUEST.e2e_s) < 1e-9


def test_top_listens_for_prism_run(prism_cmd: list[str]) -> None:
    pytest.importorskip("transformers")
    port = free_port()
    top = subprocess.Popen(
        [*prism_cmd, "top", "--once", "--timeout", "120", f"otlp+grpc://127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(port)
        run = subprocess.run(
            [*prism_cmd, "run", "--export", f"otlp+grpc://127.0.0.1:{port}", "--", sys.executable, PROGRAM],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        out, err = top.communicate(timeout=150)
    finally:
        top.kill()
    assert top.returncode == 0, err
    assert "forward" in out and "decode" in out and "TTFT" in out
    assert "6 batches, 2 requests seen" in out


def test_top_refuses_an_unknown_source(prism_cmd: list[str]) -> None:
    run = subprocess.run([*prism_cmd, "top", "--once", "kafka://x:1"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "otlp+grpc://HOST:PORT" in run.stderr
