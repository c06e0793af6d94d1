"""Export specs, the built-in jsonl and console exporters, and alert sinks through the plugin host."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import pytest

from prism_core.errors import UsageError
from prism_core.export import ConsoleExporter, ExportSpec
from prism_core.models import Alert, BatchRecord, RequestRecord, StageTiming
from prism_core.plugins import PluginHost

BATCH = BatchRecord(
    start_ns=1,
    duration_ns=2_500_000,
    mode="decode",
    batch_size=8,
    decode_tokens=8,
    avg_input_len=128.0,
    max_input_len=130,
    kv_tokens=1100,
    model="tiny-llama",
    engine="transformers",
    device="cpu:0",
    pid=os.getpid(),
    stages={"forward": StageTiming(wall_ns=2_000_000, device_ns=1_900_000), "sample": StageTiming(wall_ns=100_000)},
)
REQUEST = RequestRecord(
    arrival_ns=1,
    queue_s=0.01,
    ttft_s=0.05,
    tpot_s=0.002,
    e2e_s=0.2,
    input_tokens=128,
    output_tokens=64,
    finish_reason="length",
    model="tiny-llama",
)


@pytest.mark.parametrize(
    ("text", "scheme", "target"),
    [
        ("jsonl:/tmp/x.jsonl", "jsonl", "/tmp/x.jsonl"),
        ("otlp+grpc://127.0.0.1:4317", "otlp+grpc", "127.0.0.1:4317"),
        ("OTLP", "otlp", ""),
        ("console", "console", ""),
    ],
)
def test_spec_parse(text: str, scheme: str, target: str) -> None:
    assert ExportSpec.parse(text) == ExportSpec(scheme, target)


@pytest.mark.parametrize("text", ["", ":x", "jso n:x"])
def test_spec_without_scheme_is_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="no scheme"):
        ExportSpec.parse(text)


def test_jsonl_round_trips_records(builtin_host: PluginHost, tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    exporter = builtin_host.exporter(f"jsonl:{path}")
    exporter.export([BATCH, REQUEST])
    # Readers (`prism top FILE`, tail -f) see whole lines as soon as they are exported, before any flush or close.
    assert path.read_text().count("\n") == 2
    exporter.close()
    exporter.close()
    lines = path.read_text().splitlines()
    assert BatchRecord.model_validate_json(lines[0]) == BATCH
    assert RequestRecord.model_validate_json(lines[1]) == REQUEST
    assert all('"schema_version":1' in line for line in lines)


def test_unknown_scheme_lists_known(builtin_host: PluginHost) -> None:
    with pytest.raises(UsageError, match=r"unknown export scheme 'kafka' \(known: .*jsonl"):
        builtin_host.exporter("kafka://broker:9092")


@pytest.mark.parametrize("target", ["", "{tmp}", "{tmp}/missing/x.jsonl"])
def test_bad_jsonl_targets(builtin_host: PluginHost, tmp_path: Path, target: str) -> None:
    with pytest.raises(UsageError, match="jsonl"):
        builtin_host.exporter("jsonl:" + target.format(tmp=tmp_path))


def test_console_lines() -> None:
    out = io.StringIO()
    ConsoleExporter(ExportSpec("console", ""), stream=out).export([BATCH, REQUEST])
    batch_line, request_line = out.getvalue().splitlines()
    assert batch_line.startswith("batch tiny-llama decode bs=8 2.50ms") and "forward=2.00ms" in batch_line
    assert "ttft=50.0ms" in request_line and "out=64" in request_line


def test_log_alert_sink(builtin_host: PluginHost, caplog: pytest.LogCaptureFixture) -> None:
    sink = builtin_host.alert_sinks()["log"]
    alert = Alert(
        ts_ns=2, batch_start_ns=1, model="m", device="cpu:0", score=0.7, threshold=0.5, message="forward slow"
    )
    with caplog.at_level(logging.WARNING, logger="prism.alerts"):
        sink.send(alert)
    assert "m on cpu:0: score 0.700 > 0.500: forward slow" in caplog.text
