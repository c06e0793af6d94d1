"""`prism simulate` end to end: JSON contract, plot, placement benchmark, and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from prism_core.cli import main

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small trace pair in the real files' format, found through PRISM_DATA_DIR."""
    stamp = "2023-11-16 18:{:02d}:{:02d}.{:04d}000"
    rows = [
        f"{stamp.format(i // 60, i % 60, (i * 7919) % 10000)},{100 + (i * 37) % 900},{1 + (i * 13) % 60}"
        for i in range(240)
    ]
    for name in ("azure_llm_2023_code.csv", "azure_llm_2023_conv.csv"):
        (tmp_path / name).write_text(HEADER + "\n".join(rows) + "\n")
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path))
    return tmp_path


SMALL = ["simulate", "--models", "4", "--devices", "2", "--duration", "60", "--model-mix", "llama-3.2-1b,llama-3.1-8b"]


def test_json_is_keyed_by_policy_with_the_contract_fields(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*SMALL, "--trace", "both", "--policy", "prism", "--baseline", "static", "--json", "--cost-search"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["prism", "static"]
    for r in out.values():
        for key in ("slo_attainment", "p99_ttft_s", "p99_tpot_s", "devices_needed_for_99"):
            assert key in r
        assert 0 <= r["slo_attainment"] <= 1
        assert r["devices_needed_for_99"] is None or r["cost_search"][str(r["devices_needed_for_99"])] >= 0.99


def test_plot_draws_a_png(data_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "att.png"
    assert main([*SMALL, "--baseline", "static", "--plot", str(png), "--loads", "1,4"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_placement_reports_times(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--bench-placement", "50x5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prism"]["models"] == 50 and out["prism"]["place_ms"] > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--policy", "no-such-policy"], "unknown policy 'no-such-policy' (registered: "),
        (["--device-type", "l4", "--model-mix", "llama-2-13b"], "needs"),
        (["--slo-scale", "0"], "--slo-scale must be > 0"),
        (["--devices", "0"], "device counts must be >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    data_dir: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main([*SMALL, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_catalogue_slo_of_zero_is_exit_2(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cat = tmp_path / "cat.json"
    model = {"name": "x", "params": 1e9, "layers": 16, "hidden": 2048, "kv_bytes_per_token": 32768, "slo_ttft_s": 0}
    device = {"name": "d", "memory_bytes": 2**36, "bandwidth_Bps": 1e12, "flops": 1e14, "h2d_Bps": 1e10}
    cat.write_text(json.dumps({"models": [model], "devices": [device]}))
    assert main([*SMALL[:-2], "--catalogue", str(cat), "--device-type", "d"]) == 2
    assert "slo_ttft_s" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["", HEADER + "2023-11-16 18:00:00.0,abc,1\n", HEADER])
def test_empty_or_malformed_trace_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    (tmp_path / "azure_llm_2023_conv.csv").write_text(content)
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path))
    assert main([*SMALL, "--trace", "conv"]) == 2
    assert "trace" in capsys.readouterr().err


def test_subprocess_unknown_policy_exits_2(prism_cmd: list[str]) -> None:
    proc = subprocess.run([*prism_cmd, "simulate", "--policy", "nope"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("prism: error: unknown policy 'nope'") and proc.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [("--validate-batches", "0,2", "positive"), ("--validate-inputs", "2,16", "prompt lengths >= 4")],
)
def test_bad_validation_grid_is_exit_2_before_any_engine_runs(
    capsys: pytest.CaptureFixture[str], flag: str, value: str, says: str
) -> None:
    assert main(["simulate", "--validate-cpu", flag, value]) == 2
    assert says in capsys.readouterr().err


def test_profile_from_a_jsonl_export_drives_the_simulation(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = []
    for p, d, kv in [(512, 0, 512), (256, 0, 256), (0, 8, 808), (0, 4, 304), (128, 2, 228), (0, 1, 11)]:
        rec = {
            "kind": "batch",
            "schema_version": 1,
            "start_ns": 0,
            "duration_ns": int(1e6 * (3 + 0.02 * p + d)),
            "mode": "decode" if d else "prefill",
            "batch_size": max(d, 1),
            "prefill_tokens": p,
            "decode_tokens": d,
            "kv_tokens": kv,
            "model": "tiny",
            "engine": "transformers",
            "device": "cpu:0",
            "pid": 1,
        }
        lines.append(json.dumps(rec))
    (tmp_path / "records.jsonl").write_text("\n".join(lines) + "\n")
    code = main([*SMALL, "--profile", str(tmp_path / "records.jsonl"), "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["prism"]["finished"] > 0
