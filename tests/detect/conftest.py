"""Shared fixtures of the detection tests: LatencyPrism's published records, skipped where shared/ is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from prism_core.settings import data_dir

LATENCYPRISM = data_dir() / "latencyprism"


@pytest.fixture
def vllm_csv() -> Path:
    p = LATENCYPRISM / "sentinel_normal_vllm.csv"
    if not p.is_file():
        pytest.skip(f"LatencyPrism data not found at {p} (shared/ beside the checkout)")
    return p


@pytest.fixture
def sglang_csv() -> Path:
    p = LATENCYPRISM / "sentinel_abnormal_sglang.csv"
    if not p.is_file():
        pytest.skip(f"LatencyPrism data not found at {p} (shared/ beside the checkout)")
    return p
