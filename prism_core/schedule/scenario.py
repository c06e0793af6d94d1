"""From command-line choices to a simulation `Setup`: which models, which devices, which SLOs, which requests."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prism_core.errors import UsageError
from prism_core.schedule.catalogue import TTFT_SLO_TOKENS, Catalogue, DeviceSpec, GiB, ModelSpec
from prism_core.schedule.cost import CostModel
from prism_core.schedule.simulator import MIN_KV_TOKENS, Setup
from prism_core.schedule.workload import TraceName, Workload, build_workload, trace

# SLO = scale x the model's latency alone on the fleet's first device type, with floors an interactive service
# would not go below (a 1B model's dedicated decode step is ~2 ms; nobody promises users 10 ms per token).
SLO_DECODE_BATCH, SLO_DECODE_CONTEXT = 16, 1024  # TPOT reference: a decode step of this batch and context
TTFT_FLOOR_S, TPOT_FLOOR_S = 0.25, 0.025


@dataclass(frozen=True, slots=True)
class Scenario:
    n_models: int
    device_types: tuple[str, ...]
    trace: TraceName = "both"
    duration_s: float = 600.0
    rate_scale: float = 1.0
    seed: int = 0
    slo_scale: float = 5.0
    model_mix: tuple[str, ...] = ()
    queue_cap: int | None = None

    def with_devices(self, count: int) -> Scenario:
        """The same scenario on `count` devices, cycling through this scenario's device types."""
        types = tuple(self.device_types[i % len(self.device_types)] for i in range(count))
        return dataclasses.replace(self, device_types=types)


def parse_devices(arg: str, default_type: str) -> tuple[str, ...]:
    """'8' -> eight of `default_type`; '4xh100,4xa100-80gb' -> a mixed fleet."""
    out: list[str] = []
    for part in arg.split(","):
        part = part.strip()
        count, _, kind = part.partition("x") if not part.isdigit() else (part, "", default_type)
        try:
            n = int(count)
        except ValueError:
            raise UsageError(
                f"--devices {arg!r}: expected a count (8) or counts and types (4xh100,4xa100-80gb)"
            ) from None
        if n < 1:
            raise UsageError(f"--devices {arg!r}: device counts must be >= 1")
        out += [kind or default_type] * n
    return tuple(out)


def with_slos(model: ModelSpec, reference: DeviceSpec, cost: CostModel, scale: float) -> ModelSpec:
    """Fill in the SLOs the catalogue left out, from the model's dedicated latency on `reference`."""
    step = cost.for_model(model, reference)
    p = TTFT_SLO_TOKENS
    ttft = model.slo_ttft_s or max(TTFT_FLOOR_S, scale * step.step_s(p, float(p * p), 0, 0))
    batch, ctx = SLO_DECODE_BATCH, SLO_DECODE_CONTEXT
    tpot = model.slo_tpot_s or max(TPOT_FLOOR_S, scale * step.step_s(0, 0.0, batch, batch * ctx))
    return model.model_copy(update={"slo_ttft_s": ttft, "slo_tpot_s": tpot})


def resolve_models(s: Scenario, catalogue: Catalogue, cost: CostModel) -> list[ModelSpec]:
    """N model instances drawn (seeded) from the mix, named 'mNNN-<type>', SLOs resolved."""
    if s.slo_scale <= 0:
        raise UsageError(f"--slo-scale must be > 0 (got {s.slo_scale})")
    mix = list(s.model_mix) or catalogue.default_mix or [m.name for m in catalogue.models]
    kinds = [catalogue.model(name) for name in mix]
    reference = catalogue.device(s.device_types[0])
    rng = np.random.default_rng(s.seed + 1)
    picks = rng.integers(0, len(kinds), size=s.n_models)
    out = []
    for i, k in enumerate(picks):
        spec = with_slos(kinds[int(k)], reference, cost, s.slo_scale)
        out.append(spec.model_copy(update={"name": f"m{i:03d}-{spec.name}"}))
    return out


def check_fits(models: list[ModelSpec], devices: list[DeviceSpec]) -> None:
    """Every model must fit, weights and one long request's KV, on its TP degree of the largest devices."""
    largest = max(d.memory_bytes for d in devices)
    for m in models:
        need = (m.weight_bytes + MIN_KV_TOKENS * m.kv_bytes_per_token) / m.tp
        if need > largest:
            raise UsageError(
                f"model {m.name} needs {need / GiB:.1f} GiB per device at tp={m.tp} but the largest device has "
                f"{largest / GiB:.1f} GiB: raise its tp in the catalogue or use bigger devices"
            )
        if m.tp > len(devices):
            raise UsageError(f"model {m.name} needs {m.tp} devices (tp={m.tp}) but the fleet has {len(devices)}")


def make_setup(
    s: Scenario,
    catalogue: Catalogue,
    cost: CostModel,
    data_folder: Path | None = None,
    workload: Workload | None = None,
) -> Setup:
    devices = [catalogue.device(t) for t in s.device_types]
    models = resolve_models(s, catalogue, cost)
    check_fits(models, devices)
    if workload is None:
        workload = build_workload(trace(s.trace, data_folder), s.n_models, s.duration_s, s.rate_scale, s.seed)
    return Setup(
        models=models,
        devices=devices,
        workload=workload,
        cost=cost,
        trace=s.trace,
        rate_scale=s.rate_scale,
        seed=s.seed,
        queue_cap=s.queue_cap,
    )
