"""Measured profiles: batch records (JSONL export or CSV) fitted in place of the roofline, and the validation
against the real CPU engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prism_core.errors import UsageError
from prism_core.models import BatchRecord
from prism_core.schedule.admission import LeastSlack
from prism_core.schedule.catalogue import BUILTIN, ModelSpec
from prism_core.schedule.cost import RooflineCost
from prism_core.schedule.placement import PrismPlacement
from prism_core.schedule.profile import errors, fit_profile, load_profile, predict, read_records
from prism_core.schedule.scenario import Scenario, make_setup
from prism_core.schedule.simulator import simulate
from prism_core.schedule.workload import Workload

# duration_ms = 2 + 0.01 per prefill token + 1e-5 per squared prompt token + 0.1 per decode request + 0.001 per
# cached token read
TRUE = (2.0, 0.01, 1e-5, 0.1, 0.001)


def _ms(prefill: int, length: int, decode: int, kv_read: int) -> float:
    b, p, sq, d, kv = TRUE
    return b + p * prefill + sq * prefill * length + d * decode + kv * kv_read


def _record(prefill: int, length: int, decode: int, kv_read: int, model: str = "tiny") -> BatchRecord:
    # A BatchRecord's kv_tokens count the prompt tokens a prefill writes too.
    return BatchRecord(
        start_ns=0,
        duration_ns=int(_ms(prefill, length, decode, kv_read) * 1e6),
        mode="prefill" if prefill and not decode else "decode" if decode and not prefill else "mixed",
        batch_size=max(decode, 1) + (prefill // length if prefill else 0),
        prefill_tokens=prefill,
        decode_tokens=decode,
        avg_input_len=float(length),
        kv_tokens=kv_read + prefill,
        model=model,
        engine="transformers",
        device="cpu:0",
        pid=1,
    )


SHAPES = [(512, 512, 0, 0), (256, 128, 0, 0), (0, 64, 8, 800), (0, 64, 4, 300), (128, 64, 2, 100), (0, 16, 1, 10)]


def _jsonl(path: Path, records: list[BatchRecord]) -> Path:
    request = {"kind": "request", "schema_version": 1, "arrival_ns": 0, "queue_s": 0.0, "e2e_s": 1.0}
    lines = [r.model_dump_json() for r in records] + [json.dumps(request)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_profile_reads_the_jsonl_export_and_recovers_the_cost(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "records.jsonl", [_record(*s) for s in SHAPES])
    prof = load_profile(path)
    assert prof.rows == len(SHAPES) and prof.mape < 1e-4  # request lines are skipped, the fit is exact
    step = prof.for_model(BUILTIN.model("llama-3.1-8b"), BUILTIN.device("h100"))
    # The simulator's kv_tokens are cached tokens read; prefill_sq the sum of squared prompt lengths.
    assert step.step_s(100, 100.0 * 100, 2, 50) == pytest.approx(_ms(100, 100, 2, 50) / 1e3, rel=1e-3)
    w = Workload(
        arrival_s=np.linspace(0, 10, 20),
        prompt=np.full(20, 64),
        output=np.full(20, 8),
        model=np.zeros(20, dtype=np.int64),
        n_models=1,
        duration_s=10.0,
    )
    s = Scenario(n_models=1, device_types=("cpu-1core",), duration_s=10, model_mix=("tiny-random-llama",))
    r = simulate(make_setup(s, BUILTIN, prof, workload=w), PrismPlacement(), LeastSlack())
    assert r.finished == 20 and r.p99_tpot_s == pytest.approx(_ms(0, 64, 1, 64) / 1e3, rel=0.2)


def test_profile_reads_csv_with_the_same_columns(tmp_path: Path) -> None:
    cols = ["duration_ns", "prefill_tokens", "decode_tokens", "kv_tokens", "avg_input_len", "model"]
    rows = [",".join(cols)]
    for rec in (_record(*s) for s in SHAPES):
        rows.append(",".join(str(getattr(rec, c)) for c in cols))
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    assert load_profile(tmp_path / "p.csv").mape < 1e-4


def test_bad_profiles_are_usage_errors(tmp_path: Path) -> None:
    two = _jsonl(tmp_path / "two.jsonl", [_record(*s) for s in SHAPES] + [_record(*SHAPES[0], model="other")])
    with pytest.raises(UsageError, match="one model"):
        load_profile(two)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "batch", "duration_ns": 5}\n')
    with pytest.raises(UsageError, match="line 1 is not a batch record"):
        load_profile(bad)
    (tmp_path / "few.csv").write_text("duration_ns,prefill_tokens\n1,2\n")
    with pytest.raises(UsageError, match="lacks column"):
        load_profile(tmp_path / "few.csv")
    short = _jsonl(tmp_path / "short.jsonl", [_record(*s) for s in SHAPES[:2]])
    with pytest.raises(UsageError, match="at least 4"):
        load_profile(short)


def test_roofline_error_is_measured_against_records(tmp_path: Path) -> None:
    samples = read_records(_jsonl(tmp_path / "r.jsonl", [_record(*s) for s in SHAPES]))
    tiny: ModelSpec = BUILTIN.model("tiny-random-llama")
    pred = predict(RooflineCost().for_model(tiny, BUILTIN.device("cpu-1core")), samples)
    e = errors(pred, samples.duration_s)
    assert e["mape"] > 0 and 0 <= e["within_25pct"] <= 1 and e["iterations"] == len(SHAPES)
    assert fit_profile(samples).mape < e["mape"]


def test_validate_cpu_runs_the_real_engine_on_a_small_grid(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from prism_core.schedule.validation import validate_cpu

    records = tmp_path / "records.jsonl"
    report = validate_cpu(batches=(1, 2), inputs=(8, 24), new_tokens=3, records=records)
    samples = read_records(records)
    assert (samples.prefill > 0).sum() == 5 and (samples.decode > 0).sum() == 9  # warm-up + 4 calls of 3 steps
    assert report["iterations"]["train"] >= 6 and report["iterations"]["held_out"] >= 6
    assert report["device"]["bandwidth_Bps"] > 1e8 and report["device"]["flops"] > 1e8
    assert report["model"]["params"] == BUILTIN.model("tiny-random-llama").params  # the catalogue's tiny model
    for key in ("roofline", "roofline_cpu-1core", "profile"):
        assert set(report[key]["error"]) == {"all", "prefill", "decode"}
        assert all(np.isfinite(v) for e in report[key]["error"].values() for v in e.values())
    with pytest.raises(UsageError, match="prompt lengths >= 4"):
        validate_cpu(batches=(1,), inputs=(3, 8), new_tokens=3)
