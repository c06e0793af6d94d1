"""Per-iteration cost: how long one engine step of a model takes on a device.

Two models of it. `RooflineCost` (the default) is a roofline: a step reads the weights and the batch's KV
cache from memory and does 2 FLOPs per parameter per token plus attention, and takes the longer of the two,
plus a fixed per-step overhead; decode is therefore bandwidth-bound and prefill compute-bound. `ProfileCost`
(profile.py) replaces it with a linear fit to measured batch records (`prism simulate --profile PATH`). The
activation model (time to make an idle model resident) lives here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from prism_core.schedule.catalogue import DeviceSpec, ModelSpec

FloatArray = npt.NDArray[np.float64]


class StepCost(Protocol):
    """Cost of steps of one model on one device (or slice, or gang)."""

    def step_s(self, prefill_tokens: int, prefill_sq: float, decode_reqs: int, kv_tokens: int) -> float:
        """One step: `prefill_tokens` new prompt tokens (sum of their squares in `prefill_sq`, for attention)
        plus one token for each of `decode_reqs` running requests that together hold `kv_tokens` in cache."""
        ...

    def decode_run_s(self, decode_reqs: int, kv_tokens: int, steps: int) -> FloatArray:
        """Durations of `steps` pure-decode steps in a row; the cache grows by `decode_reqs` tokens a step."""
        ...


class CostModel(Protocol):
    name: str

    def for_model(self, model: ModelSpec, device: DeviceSpec) -> StepCost: ...

    def activation_s(self, model: ModelSpec, device: DeviceSpec) -> float:
        """Time to make a deactivated model resident: weights over host-to-device bandwidth plus a warm start."""
        ...


@dataclass(frozen=True, slots=True)
class _RooflineStep:
    overhead_s: float
    weights_s: float  # reading every weight once
    kv_s_per_token: float  # reading one token of KV
    flop_s_per_token: float  # the dense layers for one token
    attn_s_per_ctx: float  # attention of one query token against one cached token

    def step_s(self, prefill_tokens: int, prefill_sq: float, decode_reqs: int, kv_tokens: int) -> float:
        memory = self.weights_s + self.kv_s_per_token * kv_tokens
        compute = self.flop_s_per_token * (prefill_tokens + decode_reqs) + self.attn_s_per_ctx * (
            kv_tokens + prefill_sq / 2
        )
        return self.overhead_s + max(memory, compute)

    def decode_run_s(self, decode_reqs: int, kv_tokens: int, steps: int) -> FloatArray:
        kv = kv_tokens + decode_reqs * np.arange(steps, dtype=np.float64)
        memory = self.weights_s + self.kv_s_per_token * kv
        compute = self.flop_s_per_token * decode_reqs + self.attn_s_per_ctx * kv
        out: FloatArray = self.overhead_s + np.maximum(memory, compute)
        return out


@dataclass(slots=True)
class RooflineCost:
    """Roofline step cost. The efficiencies are the fractions of datasheet bandwidth and FLOP/s a serving engine
    reaches (assumptions, not measurements: about 80% of HBM bandwidth in decode and 50% MFU in prefill are
    typical of vLLM/SGLang reports); `overhead_s` covers scheduling and launch per step."""

    name: str = "roofline"
    bandwidth_efficiency: float = 0.8
    compute_efficiency: float = 0.5
    overhead_s: float = 1e-3
    h2d_efficiency: float = 0.8
    warm_start_s: float = 0.3  # engine already initialised (Prism's warm start); only weights move

    def for_model(self, model: ModelSpec, device: DeviceSpec) -> StepCost:
        bw = device.bandwidth_Bps * self.bandwidth_efficiency
        fl = device.flops * self.compute_efficiency
        return _RooflineStep(
            overhead_s=self.overhead_s,
            weights_s=model.weight_bytes / bw,
            kv_s_per_token=model.kv_bytes_per_token / bw,
            flop_s_per_token=2 * model.params / fl,
            attn_s_per_ctx=4 * model.layers * model.hidden / fl,
        )

    def activation_s(self, model: ModelSpec, device: DeviceSpec) -> float:
        return model.weight_bytes / (device.h2d_Bps * self.h2d_efficiency) + self.warm_start_s
