"""Simulator state shared by every executor: the request streams, and what happened to each request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from prism_core.schedule.catalogue import TTFT_SLO_TOKENS
from prism_core.schedule.policies import PendingRequest
from prism_core.schedule.workload import Workload

if TYPE_CHECKING:
    from prism_core.schedule.executor import Executor


@dataclass(slots=True, eq=False)
class SimRequest(PendingRequest):
    """A request inside the simulator. `prompt_tokens` is what its next prefill computes (prompt plus output
    so far after a preemption); `ctx` the tokens in its KV cache (0 = not prefilled)."""

    rid: int = 0
    prompt: int = 0
    output: int = 1
    generated: int = 0
    ctx: int = 0
    blocks: int = 0
    seq: int = 0
    first_token_s: float = -1.0


class Arrivals:
    """Per-model request streams: an executor pulls its models' arrivals up to its own clock."""

    def __init__(self, workload: Workload, slo_ttft_s: npt.NDArray[np.float64]) -> None:
        self.w = workload
        self.slo_ttft_s = slo_ttft_s
        order = np.argsort(workload.model, kind="stable")  # stable: arrival order within a model
        bounds = np.searchsorted(workload.model[order], np.arange(workload.n_models + 1))
        self._ids = [order[bounds[m] : bounds[m + 1]] for m in range(workload.n_models)]
        self._times = [workload.arrival_s[ids] for ids in self._ids]
        self._next = [0] * workload.n_models

    def next_time(self, model: int) -> float:
        i = self._next[model]
        times = self._times[model]
        return float(times[i]) if i < len(times) else float("inf")

    def pull(self, model: int, until: float) -> list[SimRequest]:
        i = self._next[model]
        times = self._times[model]
        if i >= len(times) or times[i] > until:
            return []
        j = int(np.searchsorted(times, until, side="right"))
        self._next[model] = j
        w = self.w
        out = []
        for rid in self._ids[model][i:j].tolist():
            p = int(w.prompt[rid])
            out.append(
                SimRequest(
                    model=model,
                    arrival_s=float(w.arrival_s[rid]),
                    prompt_tokens=p,
                    slo_ttft_s=float(self.slo_ttft_s[model]) * max(1.0, p / TTFT_SLO_TOKENS),
                    est_prefill_s=0.0,
                    rid=rid,
                    prompt=p,
                    output=int(w.output[rid]),
                )
            )
        return out

    def skip_until(self, model: int, until: float) -> int:
        """Discard a model's arrivals up to `until` (a model no device holds); returns how many."""
        i = self._next[model]
        j = int(np.searchsorted(self._times[model], until, side="right"))
        self._next[model] = max(i, j)
        return max(0, j - i)


class Recorder:
    """Outcomes per request, counters, and memory samples per executor at fixed times."""

    def __init__(self, n_requests: int, sample_times: npt.NDArray[np.float64]) -> None:
        self.first_token_s = np.full(n_requests, -1.0)
        self.finish_s = np.full(n_requests, -1.0)
        self.activations = 0
        self.preemptions = 0
        self.dropped = 0
        self.rejected = 0
        self.sample_times = sample_times
        self.samples: dict[int, list[tuple[int, int]]] = {}

    def finish(self, req: SimRequest, at: float) -> None:
        self.first_token_s[req.rid] = req.first_token_s
        self.finish_s[req.rid] = at

    def drop(self, req: SimRequest) -> None:
        self.dropped += 1

    def reject(self, req: SimRequest) -> None:
        self.rejected += 1

    def sample(self, ex: Executor) -> None:
        got = self.samples.setdefault(ex.index, [])
        while len(got) < len(self.sample_times) and self.sample_times[len(got)] <= ex.clock:
            got.append((ex.weights, ex.kv_used))
