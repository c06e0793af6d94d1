"""OpenTelemetry export through a real OTLP/gRPC receiver on loopback, and the chrome trace file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prism_core.errors import UsageError
from prism_core.export import names as n
from prism_core.models import BatchRecord, RequestRecord, StageTiming
from prism_core.plugins import PluginHost
from prism_core.testing import OtlpReceiver

BATCH = BatchRecord(
    start_ns=1_700_000_000_000_000_000,
    duration_ns=3_000_000,
    mode="decode",
    batch_size=8,
    decode_tokens=8,
    kv_tokens=1100,
    model="tiny",
    engine="transformers",
    device="cpu:0",
    pid=os.getpid(),
    stages={"forward": StageTiming(wall_ns=2_000_000, device_ns=1_900_000), "sample": StageTiming(wall_ns=500_000)},
)
REQUEST = RequestRecord(
    arrival_ns=1_700_000_000_000_000_000,
    queue_s=0.0,
    ttft_s=0.05,
    tpot_s=0.02,
    e2e_s=0.2,
    input_tokens=128,
    output_tokens=64,
    finish_reason="length",
    model="tiny",
)


def test_spans_and_metrics_arrive_over_grpc(builtin_host: PluginHost) -> None:
    with OtlpReceiver() as receiver:
        exporter = builtin_host.exporter(f"otlp+grpc://{receiver.address}")
        exporter.export([BATCH, REQUEST])
        exporter.close()
        assert receiver.wait_for(lambda r: len(r.spans) >= 4 and bool(r.metrics))
    spans = {s.name: s for s in receiver.spans}
    batch, forward, sample = spans["prism.batch"], spans["prism.stage.forward"], spans["prism.stage.sample"]
    assert forward.parent_span_id == batch.span_id == sample.parent_span_id
    assert (batch.start_ns, batch.end_ns) == (BATCH.start_ns, BATCH.start_ns + BATCH.duration_ns)
    assert forward.end_ns == sample.start_ns  # stages laid end to end
    assert batch.attributes[n.PRISM_BATCH_SIZE] == 8 and batch.attributes[n.PRISM_BATCH_MODE] == "decode"
    assert forward.attributes[n.PRISM_STAGE_DEVICE_NS] == 1_900_000
    request = spans["text_completion tiny"]
    assert request.parent_span_id == ""
    assert request.attributes[n.GEN_AI_OPERATION_NAME] == "text_completion"
    assert request.attributes[n.GEN_AI_PROVIDER_NAME] == "transformers"
    assert request.attributes[n.GEN_AI_USAGE_INPUT_TOKENS] == 128
    assert request.attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] == 64
    assert request.attributes[n.GEN_AI_RESPONSE_FINISH_REASONS] == ["length"]
    assert request.resource["service.name"] == "prism"
    metrics = {m.name: m for m in receiver.metrics}
    ttft = metrics[n.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN]
    assert [float(b) for b in ttft.points[0]["explicitBounds"]] == list(n.TTFT_BUCKETS_S)
    assert ttft.points[0]["count"] == "1"
    assert [float(b) for b in metrics[n.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN].points[0]["explicitBounds"]] == list(
        n.TPOT_BUCKETS_S
    )
    bounds = metrics[n.GEN_AI_SERVER_REQUEST_DURATION].points[0]["explicitBounds"]
    assert [float(b) for b in bounds] == pytest.approx(list(n.REQUEST_DURATION_BUCKETS_S))
    stage_points = metrics[n.PRISM_STAGE_DURATION].points
    assert {p["attributes"][0]["value"]["stringValue"] for p in stage_points} >= {"forward", "sample"}
    assert n.PRISM_BATCH_DURATION in metrics


def test_global_providers_are_left_alone(builtin_host: PluginHost) -> None:
    from opentelemetry import metrics, trace

    before = (trace.get_tracer_provider(), metrics.get_meter_provider())
    with OtlpReceiver() as receiver:
        exporter = builtin_host.exporter(f"otlp+http://127.0.0.1:{receiver.port}")  # wrong protocol: spans fail
        exporter.export([BATCH])
        exporter.close()  # a failing send is counted, never raised into the program
    assert (trace.get_tracer_provider(), metrics.get_meter_provider()) == before


@pytest.mark.parametrize(
    "spec", ["otlp+grpc://", "otlp+grpc://nohost", "otlp+http://127.0.0.1:port", "otlp:somewhere", "chrome:"]
)
def test_bad_otlp_and_chrome_targets(builtin_host: PluginHost, spec: str) -> None:
    with pytest.raises(UsageError):
        builtin_host.exporter(spec)


def test_chrome_trace_has_a_track_per_stage(builtin_host: PluginHost, tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    exporter = builtin_host.exporter(f"chrome:{path}")
    exporter.export([BATCH, REQUEST])
    exporter.export([BATCH])
    exporter.close()
    events = json.loads(path.read_text())
    tracks = {e["args"]["name"]: e["tid"] for e in events if e.get("name") == "thread_name"}
    assert {"batch", "forward", "sample"} <= set(tracks)
    slices = [e for e in events if e["ph"] == "X"]
    assert sum(e["tid"] == tracks["forward"] for e in slices) == 2
    assert {e["ph"] for e in events if e.get("cat") == "request"} == {"b", "e"}


def test_trace_sampling_keeps_every_batch_in_the_histograms(
    builtin_host: PluginHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    with OtlpReceiver() as receiver:
        exporter = builtin_host.exporter(f"otlp+grpc://{receiver.address}")
        exporter.export([BATCH] * 400 + [REQUEST] * 40)
        exporter.close()
        assert receiver.wait_for(lambda r: bool(r.metrics) and len(r.spans) > 0)
    batch_spans = sum(1 for s in receiver.spans if s.name == "prism.batch")
    assert 50 <= batch_spans <= 150  # about a quarter of 400 (binomial: 100 +- 8.7)
    assert sum(1 for s in receiver.spans if s.name == "prism.stage.forward") == batch_spans  # whole traces only
    metrics = {m.name: m for m in receiver.metrics}
    assert sum(int(p["count"]) for p in metrics[n.PRISM_BATCH_DURATION].points) == 400
    assert sum(int(p["count"]) for p in metrics[n.GEN_AI_SERVER_REQUEST_DURATION].points) == 40


@pytest.mark.parametrize(
    ("sampler", "arg", "expected"),
    [("always_off", "", 0.0), ("parentbased_always_on", "", 1.0), ("traceidratio", "0.1", 0.1), ("", "", 1.0)],
)
def test_sampler_variables(sampler: str, arg: str, expected: float) -> None:
    from prism_core.export.otel import sample_ratio

    assert sample_ratio({"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": arg}) == expected


@pytest.mark.parametrize(
    ("sampler", "arg", "message"),
    [("jaeger_remote", "", "Prism supports"), ("traceidratio", "half", "a ratio"), ("traceidratio", "2", "a ratio")],
)
def test_bad_sampler_variables_are_one_line(
    builtin_host: PluginHost, monkeypatch: pytest.MonkeyPatch, sampler: str, arg: str, message: str
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    with pytest.raises(UsageError, match=message):
        builtin_host.exporter("otlp+grpc://127.0.0.1:4317")
