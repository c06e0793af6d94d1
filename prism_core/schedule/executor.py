"""One simulated serving unit: a device (or a slice of one, or a tensor-parallel gang) and its models.

Each loop: take the arrivals up to now, activate or deactivate models (time sharing), let the admission policy
start waiting requests within the KV budget, then run one engine step of every model that has work: a step
interleaves the co-located models' iterations, so it lasts the sum of their iteration costs (they contend for
the same bandwidth and compute). Runs of identical decode steps are taken in one go (`_decode_run`), up to the
next event that could change the batch: an arrival, a request finishing, the KV budget, an activation.

KV memory (pages, the broker's budget) lives in kvmemory.py, time sharing (activation, deactivation) in
lifecycle.py, per-model state in slots.py. When a step needs a block the budget lacks, the most recently
admitted request is preempted and recomputed later (vLLM's default).
"""

from __future__ import annotations

import math

import numpy as np

from prism_core.schedule.catalogue import KV_BLOCK_TOKENS, DeviceSpec, ModelSpec
from prism_core.schedule.cost import CostModel
from prism_core.schedule.kvmemory import Budget, growth
from prism_core.schedule.lifecycle import Lifecycle
from prism_core.schedule.policies import AdmissionPolicy, SharingMode
from prism_core.schedule.simstate import Arrivals, Recorder, SimRequest
from prism_core.schedule.slots import ACTIVATING, ACTIVE, INACTIVE, Slot

PREFILL_CHUNK = 512  # chunked prefill: prompt tokens per model per step (vLLM v0 default token budget)


class Executor(Lifecycle):
    """Runs its models' steps; `run_until(t)` advances its own clock past `t` (or until it has nothing to do)."""

    def __init__(
        self,
        index: int,
        spec: DeviceSpec,
        devices: tuple[int, ...],
        mode: SharingMode,
        admission: AdmissionPolicy,
        cost: CostModel,
        arrivals: Arrivals,
        recorder: Recorder,
        shares: dict[int, float] | None = None,
        queue_cap: int | None = None,
    ) -> None:
        self.index = index
        self.spec = spec
        self.devices = devices
        self.shares = shares or dict.fromkeys(devices, 1.0)  # fraction of each device this executor is
        self.mode = mode
        self.admission = admission
        self.cost = cost
        self.arrivals = arrivals
        self.rec = recorder
        self.queue_cap = queue_cap
        self.slots: dict[int, Slot] = {}
        self.clock = 0.0
        self.busy_s = 0.0
        self.weights = 0  # bytes of resident (or activating) weights
        self.kv_used = 0  # bytes of KV pages held
        self._seq = 0
        self._preempted = False  # no admission until a step runs again, so preemption cannot livelock

    # Models come and go ---------------------------------------------------------------------------------

    def add_model(self, model: int, spec: ModelSpec, min_kv_bytes: int, kv_share: float | None = None) -> Slot:
        slot = Slot(
            index=model,
            spec=spec,
            cost=self.cost.for_model(spec, self.spec),
            activation_s=self.cost.activation_s(spec, self.spec),
            min_kv_bytes=min_kv_bytes,
        )
        if kv_share is not None:
            slot.quota_bytes = kv_share * max(self.spec.memory_bytes - self._fixed_weights(spec), 0)
        self.slots[model] = slot
        return slot

    def _fixed_weights(self, extra: ModelSpec) -> int:
        return sum(s.spec.weight_bytes for s in self.slots.values()) + extra.weight_bytes

    def preload(self, order: list[int]) -> None:
        """Make models resident at time 0, in `order`, as far as the sharing mode and memory allow."""
        for m in order:
            slot = self.slots[m]
            if self.mode.max_active is not None and self._resident_count() >= self.mode.max_active:
                break
            if self.mode.memory == "elastic" and self._free_bytes() < slot.spec.weight_bytes + slot.min_kv_bytes:
                continue
            self._set_state(slot, ACTIVE)
            slot.ready_at = self.clock

    def remove_model(self, model: int) -> list[SimRequest]:
        """Take a model away (migration): its running requests are preempted, everything queued comes along."""
        slot = self.slots[model]
        for req in list(slot.running):
            self._preempt(slot, req, requeue=True)
        self._set_state(slot, INACTIVE)
        del self.slots[model]
        return [entry[2] for entry in slot.queue.heap]

    def enqueue(self, requests: list[SimRequest]) -> None:
        for req in requests:
            self.slots[req.model].queue.push(req)

    # Main loop ------------------------------------------------------------------------------------------

    def run_until(self, t_end: float) -> None:
        while self.clock < t_end:
            self.rec.sample(self)
            self._pull()
            self._lifecycle()
            self._admit()
            busy = [s for s in self.slots.values() if s.running]
            if not busy and self._preempted:
                self._preempted = False  # nothing runs, so admitting cannot livelock: try again
                continue
            if not busy and self._stalled() and self._balloon(math.inf, just_one=True):
                continue  # an idle resident model held the memory a waiting request needs
            if not busy:
                nxt = min(self._next_arrival(), self._next_ready(), t_end)
                if nxt <= self.clock:
                    nxt = t_end  # nothing can run and nothing will change before t_end
                self.clock = nxt
                continue
            if any(r.ctx < r.prompt_tokens for s in busy for r in s.running):
                self._mixed_step(busy)
            else:
                self._decode_run(busy, min(self._next_arrival(), self._next_ready(), t_end))

    def pending(self) -> int:
        return sum(len(s.running) + len(s.queue) for s in self.slots.values())

    def _next_arrival(self) -> float:
        return min((self.arrivals.next_time(m) for m in self.slots), default=math.inf)

    def _next_ready(self) -> float:
        return min((s.ready_at for s in self.slots.values() if s.state == ACTIVATING), default=math.inf)

    def _stalled(self) -> bool:
        return any(s.queue and s.state == ACTIVE and not s.draining for s in self.slots.values())

    def _pull(self) -> None:
        for slot in self.slots.values():
            for req in self.arrivals.pull(slot.index, self.clock):
                if not self._can_ever_fit(slot, req.prompt_tokens):
                    self.rec.drop(req)
                    continue
                if self.queue_cap is not None and len(slot.queue) >= self.queue_cap:
                    self.rec.reject(req)  # load shedding: the client is told at once instead of timing out
                    continue
                req.est_prefill_s = slot.cost.step_s(req.prompt_tokens, float(req.prompt_tokens) ** 2, 0, 0)
                req.priority = self.admission.priority(req)
                slot.queue.push(req)

    def _preempt(self, slot: Slot, req: SimRequest, requeue: bool) -> None:
        slot.running.remove(req)
        self._set_blocks(slot, slot.blocks - req.blocks)
        req.blocks = 0
        req.ctx = 0
        req.prompt_tokens = req.prompt + req.generated  # recompute: prefill prompt and output so far
        self.rec.preemptions += 1
        self._preempted = True
        if requeue:
            slot.queue.push(req)

    def _preempt_for(self, short: Slot) -> None:
        """Free memory for `short`: deactivate an idle model (elastic, on demand), else preempt the latest-admitted
        request (of `short` when its quota is the limit)."""
        if short.quota_bytes == math.inf and self._balloon(math.inf, just_one=True):
            return
        pool = [short] if short.quota_bytes < math.inf else [s for s in self.slots.values() if s.running]
        slot, req = max(((s, r) for s in pool for r in s.running), key=lambda sr: sr[1].seq)
        alone = sum(len(s.running) for s in pool) == 1
        self._preempt(slot, req, requeue=not alone)
        if alone:  # it cannot grow even with the budget to itself: it can never finish here
            self.rec.drop(req)

    # Admission ------------------------------------------------------------------------------------------

    def _admit(self) -> None:
        if self._preempted:
            return
        queues = {m: s.queue for m, s in self.slots.items() if s.queue and s.state == ACTIVE and not s.draining}
        if not queues:
            return
        for slot in self.slots.values():
            slot.step_prefill = 0
        for pending in self.admission.admit(queues, Budget(self)):
            req = pending if isinstance(pending, SimRequest) else None
            if req is None:
                raise TypeError(f"admission policy {self.admission.name!r} returned a request it was not given")
            slot = self.slots[req.model]
            self._seq += 1
            req.seq = self._seq
            slot.running.append(req)

    # Steps ----------------------------------------------------------------------------------------------

    def _mixed_step(self, busy: list[Slot]) -> None:
        """One step with prompt work: chunked prefill (up to PREFILL_CHUNK tokens per model) beside decoding."""
        growth = {
            s: sum(1 for r in s.running if r.ctx >= r.prompt_tokens and r.ctx % KV_BLOCK_TOKENS == 0) for s in busy
        }
        if not self._fits_all(growth):
            self._preempt_for(next((s for s, g in growth.items() if not self._fits(s, g)), busy[0]))
            return
        duration = 0.0
        chunks: dict[SimRequest, int] = {}
        for slot in busy:
            budget = PREFILL_CHUNK
            prefill, attention, decode, kv = 0, 0.0, 0, 0
            for r in slot.running:
                if r.ctx >= r.prompt_tokens:
                    decode += 1
                    kv += r.ctx
                elif budget > 0:
                    n = min(budget, r.prompt_tokens - r.ctx)
                    budget -= n
                    chunks[r] = n
                    prefill += n
                    attention += float((r.ctx + n) ** 2 - r.ctx**2)  # the chunk attends to what came before
            duration += slot.cost.step_s(prefill, attention, decode, kv)
        self._advance(duration)
        for slot in busy:
            done = []
            for r in slot.running:
                if r.ctx < r.prompt_tokens:
                    r.ctx += chunks.get(r, 0)
                    if r.ctx < r.prompt_tokens:
                        continue  # more prompt chunks to go: no token yet
                else:
                    r.ctx += 1
                    r.blocks = -(-r.ctx // KV_BLOCK_TOKENS)
                r.generated += 1
                if r.first_token_s < 0:
                    r.first_token_s = self.clock
                if r.generated >= r.output:
                    done.append(r)
            self._set_blocks(slot, slot.blocks + growth[slot])
            self._finish(slot, done)

    def _decode_run(self, busy: list[Slot], stop: float) -> None:
        k_max = min(r.output - r.generated for s in busy for r in s.running)
        ctx = {s: np.fromiter((r.ctx for r in s.running), dtype=np.int64, count=len(s.running)) for s in busy}
        first = sum(s.cost.step_s(0, 0.0, len(c), int(c.sum())) for s, c in ctx.items())
        if math.isfinite(stop):
            k_max = max(1, min(k_max, int((stop - self.clock) / first) + 1))
        k = self._kv_bound(ctx, k_max)
        if k == 0:
            short = next((s for s, c in ctx.items() if not self._fits(s, growth(c, 1))), busy[0])
            self._preempt_for(short)
            return
        times = sum(s.cost.decode_run_s(len(c), int(c.sum()), k) for s, c in ctx.items())
        cum = np.cumsum(times)
        if math.isfinite(stop):
            k = min(k, int(np.searchsorted(cum, stop - self.clock)) + 1)
        self._advance(float(cum[k - 1]))
        for slot, c in ctx.items():
            self._set_blocks(slot, slot.blocks + growth(c, k))
            done = []
            for r in slot.running:
                r.ctx += k
                r.generated += k
                r.blocks = -(-r.ctx // KV_BLOCK_TOKENS)
                if r.generated >= r.output:
                    done.append(r)
            self._finish(slot, done)

    def _kv_bound(self, ctx: dict[Slot, np.ndarray], k_max: int) -> int:
        """The most decode steps (<= k_max) whose new KV blocks the budget can take."""
        if self._fits_all({s: growth(c, k_max) for s, c in ctx.items()}):
            return k_max
        lo, hi = 0, k_max  # fits(lo), not fits(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._fits_all({s: growth(c, mid) for s, c in ctx.items()}):
                lo = mid
            else:
                hi = mid
        return lo

    def _advance(self, duration: float) -> None:
        self._preempted = False
        self.clock += duration
        self.busy_s += duration

    def _finish(self, slot: Slot, done: list[SimRequest]) -> None:
        slot.last_busy = self.clock
        if not done:
            return
        for r in done:
            slot.running.remove(r)
            self.rec.finish(r, self.clock)
        self._set_blocks(slot, sum(r.blocks for r in slot.running))
