"""The online detector: alerts on slow batches only, warms up without a model, escalates, survives bad sinks."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from prism_core.bootstrap.detect import parse_chart
from prism_core.detect import ChartConfig, Detector, DetectorConfig, FunctionSink, LatencyModel
from prism_core.detect.bench import decode_record, synthetic_decode_table
from prism_core.detect.chart import ControlChart, Recentre, chart_config
from prism_core.errors import UsageError
from prism_core.models import Alert

LAW = (20_000, 40, 0.02)  # the synthetic table's latency law: fixed + per sequence + per KV token


def _normal_us(b: int, kv: float) -> float:
    return LAW[0] + LAW[1] * b + LAW[2] * b * kv


def _stream(n: int, slow_from: int | None = None, factor: float = 2.0, seed: int = 3) -> list:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b, kv = int(rng.integers(1, 257)), float(rng.uniform(64, 4096))
        noise = float(rng.lognormal(0, 0.02))  # the same 2% noise the training table has
        us = _normal_us(b, kv) * noise * (factor if slow_from is not None and i >= slow_from else 1.0)
        out.append(decode_record(b, kv, us, start_ns=i * 1_000_000))
    return out


def test_alerts_once_when_batches_slow_down() -> None:
    got: list[Alert] = []
    escalations: list[int] = []
    config = DetectorConfig(escalate_batches=150)  # longer than the excursion: one alert
    det = Detector(LatencyModel.fit(synthetic_decode_table(4000)), [FunctionSink(got.append)], config)
    det.on_escalate(lambda _a, n: escalations.append(n))
    alerts = [a for r in _stream(300, slow_from=200) if (a := det.update(r)) is not None]
    assert len(alerts) == 1 and got == alerts  # one excursion, one alert, and the sink got it
    assert alerts[0].batch_start_ns >= 200 * 1_000_000  # never before the slowdown
    assert alerts[0].score > alerts[0].threshold
    assert escalations == [det.config.escalate_batches]
    assert det.last is not None and det.last.alarm


def test_prefill_batches_are_not_monitored_by_default() -> None:
    det = Detector(LatencyModel.fit(synthetic_decode_table(2000)))
    slow_prefill = decode_record(8, 512, 10_000_000).model_copy(update={"mode": "prefill"})
    assert all(det.update(slow_prefill) is None for _ in range(20))
    assert det.last is None


def test_warm_up_learns_then_alerts() -> None:
    cfg = DetectorConfig(warmup_batches=400, escalate_batches=200, chart=ChartConfig(mode="window", window=5))
    det = Detector(None, config=cfg)
    assert not det.ready
    for r in _stream(400, seed=5):
        assert det.update(r) is None  # never alerts while learning
    assert det.wait_ready(60), det.fit_error
    alerts = [a for r in _stream(200, slow_from=100, factor=3.0, seed=6) if (a := det.update(r)) is not None]
    assert len(alerts) == 1 and alerts[0].batch_start_ns >= 100 * 1_000_000


def test_a_failing_sink_does_not_stop_the_others() -> None:
    got: list[Alert] = []

    def boom(_a: Alert) -> None:
        raise RuntimeError("sink down")

    det = Detector(
        LatencyModel.fit(synthetic_decode_table(2000)),
        [FunctionSink(boom, name="boom"), FunctionSink(got.append)],
        DetectorConfig(chart=ChartConfig(mode="point")),
    )
    alerts = [a for r in _stream(50, slow_from=10, factor=3.0) if (a := det.update(r)) is not None]
    assert alerts and got == alerts


def test_an_excursion_longer_than_its_escalation_window_alerts_again() -> None:
    cfg = DetectorConfig(escalate_batches=20, chart=ChartConfig(mode="point"))
    det = Detector(LatencyModel.fit(synthetic_decode_table(2000)), config=cfg)
    alerts = [a for r in _stream(80, slow_from=10, factor=3.0) if (a := det.update(r)) is not None]
    # 70 slow batches: the first alert, then one after each further 21 batches still over threshold.
    assert [a.batch_start_ns // 1_000_000 for a in alerts] == [10, 31, 52, 73]


def test_bench_detect_prints_its_figures(prism_cmd: list[str]) -> None:
    """`prism bench detect` (BENCHMARKS.md): every slow batch alerts and reaches every sink, the webhook included."""
    run = subprocess.run(
        [*prism_cmd, "bench", "detect", "--rows", "1000", "--json"], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads(run.stdout)
    assert figures["alerts"] == figures["webhook_delivered"] == 2000 and figures["webhook_drained"]
    assert figures["score_us_p50"] > 0 and figures["alert_latency_ms_p99"] > 0


def test_a_run_rule_lets_lone_spikes_pass_and_alarms_on_the_second_slow_batch() -> None:
    chart = ControlChart(1, 0.3, run=2)
    flags = [chart.update(e)[1] for e in (0.0, 0.9, 0.0, 0.0, 0.9, 0.9, 0.9, 0.0, 0.9)]
    assert flags == [False, False, False, False, False, True, True, False, False]
    with pytest.raises(UsageError, match="--run must be in"):
        chart_config("point", 1, 3.0, 0.5, run=0)


def test_a_model_carried_to_a_slower_host_recentres_and_still_alerts_on_a_fault() -> None:
    # The host runs every batch 25% slower than the model learnt (as two runs two hours apart did here); then a
    # fault doubles the latency. Without re-centring every batch alarms; with it, only the fault does.
    model = LatencyModel.fit(synthetic_decode_table(4000))
    stream = _stream(900, slow_from=700, factor=2.0)
    stream = [r.model_copy(update={"duration_ns": int(r.duration_ns * 1.25)}) for r in stream]
    flagged = {}
    for n in (0, 200):
        det = Detector(model, config=DetectorConfig(chart=ChartConfig(recentre=n), escalate_batches=1000))
        flagged[n] = [i for i, r in enumerate(stream) if det.update(r) is not None or (det.last and det.last.alarm)]
    assert len([i for i in flagged[0] if i < 700]) > 600
    assert [i for i in flagged[200] if 40 <= i < 700] == []  # the scale is learnt from the first batches
    assert len([i for i in flagged[200] if i >= 700]) > 190
    assert det.last is not None and det.last.predicted_us > 0


def test_a_fault_that_raises_the_chart_does_not_move_the_scale() -> None:
    scale = Recentre(100)
    for _ in range(100):  # the first n count whatever the chart says
        scale.observe(1250.0, 1000.0, over=True)
    assert scale.scale == pytest.approx(1.25)
    for _ in range(500):  # a long fault: the chart is over, and the scale stays
        scale.observe(2500.0, 1000.0, over=True)
    assert scale.scale == pytest.approx(1.25)
    assert scale.error(2500.0, 1000.0) == pytest.approx(0.5)
    for _ in range(100):  # a drift the chart lets through moves it
        scale.observe(1100.0, 1000.0, over=False)
    assert scale.scale == pytest.approx(1.1)
    off = Recentre(0)
    off.observe(2000.0, 1000.0, over=False)
    assert off.scale == 1.0 and off.error(2000.0, 1000.0) == pytest.approx(0.5)


def test_recentre_is_checked() -> None:
    with pytest.raises(UsageError, match="--recentre must be in"):
        chart_config("point", 1, 3.0, 0.5, recentre=-1)
    assert parse_chart("point,k=3,run=2,recentre=200").recentre == 200


def test_with_a_run_rule_a_stall_still_alarms_alone() -> None:
    # A GC storm's stall is one batch hundreds of times its prediction; two-in-a-row would never see it.
    chart = ControlChart(1, 0.3, run=2, lone_ratio=10.0)
    flags = [chart.update(e)[1] for e in (0.0, 0.7, 0.0, 0.999, 0.0, 0.92, 0.0)]  # 3.3x passes; 1000x, 12.5x alarm
    assert flags == [False, False, False, True, False, True, False]
    assert ControlChart(1, 0.3, run=1, lone_ratio=10.0).lone_error > 1  # without a run rule nothing changes
    assert ChartConfig().lone_ratio == 10.0
    with pytest.raises(UsageError, match="--lone-ratio must be over 1"):
        chart_config("point", 1, 3.0, 0.5, run=2, lone_ratio=0.5)
    assert parse_chart("point,k=3,run=2,lone_ratio=0").lone_ratio == 0
