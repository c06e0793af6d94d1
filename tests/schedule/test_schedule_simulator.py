"""The simulator on small workloads: conservation, sharing behaviour, costs, traces and profiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prism_core.errors import UsageError
from prism_core.schedule.admission import FirstComeFirstServed, LeastSlack
from prism_core.schedule.catalogue import BUILTIN
from prism_core.schedule.cost import RooflineCost
from prism_core.schedule.placement import PrismPlacement, SpaceNoElasticPlacement, StaticPlacement, TimeSharingPlacement
from prism_core.schedule.scenario import Scenario, make_setup
from prism_core.schedule.simulator import simulate
from prism_core.schedule.workload import Trace, Workload, build_workload, load_trace, trace
from prism_core.settings import data_dir

DATA = data_dir()
POLICIES = [PrismPlacement(), StaticPlacement(), SpaceNoElasticPlacement(), TimeSharingPlacement()]


def synthetic(n_models: int = 4, n: int = 400, duration: float = 60.0, seed: int = 1) -> Workload:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, duration, n))
    return Workload(
        arrival_s=t,
        prompt=rng.integers(50, 1500, n),
        output=rng.integers(1, 120, n),
        model=rng.integers(0, n_models, n),
        n_models=n_models,
        duration_s=duration,
    )


def setup_for(w: Workload, devices: int, mix: tuple[str, ...] = ("llama-3.1-8b", "llama-3.2-1b")):
    s = Scenario(n_models=w.n_models, device_types=("h100",) * devices, duration_s=w.duration_s, model_mix=mix)
    return make_setup(s, BUILTIN, RooflineCost(), workload=w)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_light_load_serves_every_request_within_slo(policy) -> None:
    w = synthetic(n=120)
    r = simulate(setup_for(w, 2), policy, LeastSlack())
    assert r.finished == r.requests == len(w)
    # Time sharing pays an activation (weights over PCIe) whenever the device switches model: that is its cost.
    assert r.slo_attainment >= (0.3 if policy.name == "time-sharing" else 0.95)
    assert r.p99_ttft_s is not None and r.p99_tpot_s is not None
    assert len(r.device_utilisation) == 2 and all(0 < u <= 1 for u in r.device_utilisation)
    assert sum(m.requests for m in r.per_model) == len(w)


def test_time_sharing_activates_and_static_does_not() -> None:
    w = synthetic(n_models=6, n=300)
    ts = simulate(setup_for(w, 1), TimeSharingPlacement(), FirstComeFirstServed())
    st = simulate(setup_for(w, 2), StaticPlacement(), FirstComeFirstServed())
    assert ts.activations > 1 and st.activations == 0
    assert ts.finished == len(w)


def test_more_load_never_raises_attainment_much() -> None:
    w = synthetic(n=200)
    heavy = synthetic(n=3000)
    light_r = simulate(setup_for(w, 1), StaticPlacement(), FirstComeFirstServed())
    heavy_r = simulate(setup_for(heavy, 1), StaticPlacement(), FirstComeFirstServed())
    assert heavy_r.slo_attainment < light_r.slo_attainment


def test_queue_cap_sheds_arrivals_under_overload() -> None:
    heavy = synthetic(n=3000)
    capped = Scenario(n_models=heavy.n_models, device_types=("h100",), duration_s=heavy.duration_s, queue_cap=4)
    shed = simulate(make_setup(capped, BUILTIN, RooflineCost(), workload=heavy), StaticPlacement(), LeastSlack())
    unbounded = simulate(setup_for(heavy, 1), StaticPlacement(), LeastSlack())
    assert unbounded.rejected == 0
    assert shed.rejected > 0
    assert shed.finished + shed.rejected + shed.dropped <= shed.requests == len(heavy)


def test_memory_timeline_counts_weights_of_resident_models() -> None:
    w = synthetic(n=100)
    r = simulate(setup_for(w, 1, ("llama-3.1-8b",)), SpaceNoElasticPlacement(), FirstComeFirstServed())
    weights = np.array(r.memory.weights_gib[0])
    assert weights.max() == pytest.approx(4 * BUILTIN.model("llama-3.1-8b").weight_bytes / 2**30, rel=1e-3)
    assert max(r.memory.kv_gib[0]) > 0


def test_roofline_decode_is_bandwidth_bound_and_prefill_compute_bound() -> None:
    cost = RooflineCost().for_model(BUILTIN.model("llama-3.1-8b"), BUILTIN.device("h100"))
    one, many = cost.step_s(0, 0.0, 1, 100), cost.step_s(0, 0.0, 32, 3200)
    assert many < 2 * one  # batching decode is almost free: the weights are read once
    assert cost.step_s(4096, 4096.0**2, 0, 0) > 4 * cost.step_s(512, 512.0**2, 0, 0)  # prefill scales with tokens
    run = cost.decode_run_s(8, 800, 5)
    assert run[0] == pytest.approx(cost.step_s(0, 0.0, 8, 800)) and (np.diff(run) > 0).all()


def test_trace_files_empty_or_malformed_are_usage_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UsageError, match="empty"):
        load_trace(empty)
    bad = tmp_path / "bad.csv"
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,12,x\n")
    with pytest.raises(UsageError, match="line 2"):
        load_trace(bad)


def test_workload_is_seeded_long_tailed_and_scaled() -> None:
    t = np.arange(0, 600, 0.1)
    src = Trace(arrival_s=t, prompt=np.full(len(t), 100), output=np.full(len(t), 10))
    a = build_workload(src, 10, 300, rate_scale=2.0, seed=3)
    b = build_workload(src, 10, 300, rate_scale=2.0, seed=3)
    assert np.array_equal(a.model, b.model)
    assert len(a) == pytest.approx(2 * 300 / 0.1, rel=0.01)  # twice the trace's rate
    counts = np.bincount(a.model, minlength=10)
    assert counts[0] == counts.max() and counts[0] > 3 * np.median(counts)


@pytest.mark.skipif(not DATA.exists(), reason=f"real traces not found at {DATA} (shared/data beside the checkout)")
def test_real_traces_load_and_drive_a_short_run() -> None:
    both = trace("both", DATA)
    parts = len(trace("code", DATA).arrival_s) + len(trace("conv", DATA).arrival_s)
    assert len(both.arrival_s) == parts > 28_000 and (np.diff(both.arrival_s) >= 0).all()
    s = Scenario(n_models=6, device_types=("h100",) * 3, trace="both", duration_s=60)
    r = simulate(make_setup(s, BUILTIN, RooflineCost(), DATA), PrismPlacement(), LeastSlack())
    assert r.requests > 100 and r.finished == r.requests
