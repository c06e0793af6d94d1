"""Continuous batching (`generate_batch`, `init_continuous_batching`): one iteration per scheduler step.

    ContinuousBatchProcessor.prepare_next_batch   ->  schedule        (iteration starts; empty steps are dropped)
      ContinuousBatchingIOs.prepare_batch_tensors ->  prepare_inputs  (nested: schedule's time excludes it)
    ContinuousBatchProcessor._generation_step     ->  forward         (model, logits processors)
      ModelRunner._sample                         ->  sample          (nested in forward)
    ContinuousBatchProcessor.update_batch         ->  postprocess     (iteration ends; finished requests reported)

The workload is read from the scheduled request states as plain Python ints. TTFT is the end of the step in
which a request got its first token; arrival, queue and end come from the request's own perf_counter stamps.
With async batching (CUDA graphs) steps overlap and are not described; this wrapper targets the synchronous
loop that runs on CPU.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from prism_core.capture.patching import Patcher, timed_stage
from prism_core.capture.stages import FORWARD, POSTPROCESS, PREPARE_INPUTS, SAMPLE, SCHEDULE, StageRecorder
from prism_core.capture.workload import RequestTiming, Workload
from prism_plugins.frameworks.transformers.generate import ENGINE

# The patch points below by qualname, for `prism attach`'s stack sampling (a test keeps the two in step).
SAMPLED_STAGES = {
    "ContinuousBatchProcessor.prepare_next_batch": SCHEDULE,
    "ContinuousBatchingIOs.prepare_batch_tensors": PREPARE_INPUTS,
    "ContinuousBatchingAsyncIOs.prepare_batch_tensors": PREPARE_INPUTS,
    "ContinuousBatchProcessor._generation_step": FORWARD,
    "ModelRunner._sample": SAMPLE,
    "ContinuousBatchProcessor.update_batch": POSTPROCESS,
}
MAX_TRACKED = 100_000  # first-token stamps of requests that never finish (cancelled) are forgotten past this


def _ns(perf_s: float) -> int:
    return int(perf_s * 1e9)


class ContinuousInstrumentation:
    def __init__(self, patcher: Patcher) -> None:
        self.recorder: StageRecorder | None = None
        self._patcher = patcher
        self._local = threading.local()
        self._first_token_ns: dict[str, int] = {}

    @staticmethod
    def targets() -> list[tuple[Any, str, str]]:
        """(owner, attribute, stage) for every patch point; ImportError/AttributeError if this version lacks one."""
        from transformers.generation.continuous_batching import continuous_api, input_outputs, model_runner

        proc = continuous_api.ContinuousBatchProcessor
        points = [
            (proc, "prepare_next_batch", SCHEDULE),
            (proc, "_generation_step", FORWARD),
            (proc, "update_batch", POSTPROCESS),
            (model_runner.ModelRunner, "_sample", SAMPLE),
        ]
        for io in (input_outputs.ContinuousBatchingIOs, input_outputs.ContinuousBatchingAsyncIOs):
            if "prepare_batch_tensors" in io.__dict__:
                points.append((io, "prepare_batch_tensors", PREPARE_INPUTS))
        for owner, name, _ in points:
            getattr(owner, name)
        return points

    def install(self, recorder: StageRecorder) -> None:
        self.recorder = recorder
        for owner, name, stage in self.targets():
            if not self._patcher.is_patched(owner, name):
                self._patcher.wrap(owner, name, functools.partial(self._wrap, stage))

    def _wrap(self, stage: str, original: Callable[..., Any]) -> Callable[..., Any]:
        inst = self
        special = {SCHEDULE: inst._schedule, PREPARE_INPUTS: inst._prepare, POSTPROCESS: inst._postprocess}.get(stage)
        if special is None:
            return timed_stage(stage, original, lambda: inst.recorder)

        @functools.wraps(original)
        def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
            rec = inst.recorder
            if rec is None:
                return original(obj, *args, **kwargs)
            return special(rec, original, obj, *args, **kwargs)

        return wrapper

    def _schedule(self, rec: StageRecorder, original: Callable[..., Any], obj: Any, *args: Any, **kw: Any) -> Any:
        rec.iteration_begin()  # a step that finds nothing to do is discarded by the next iteration_begin
        self._local.states = []
        self._local.model = _model_name(obj)
        rec.begin(SCHEDULE)
        try:
            return original(obj, *args, **kw)
        finally:
            rec.end(SCHEDULE)

    def _prepare(self, rec: StageRecorder, original: Callable[..., Any], obj: Any, *args: Any, **kw: Any) -> Any:
        scheduled = kw.get("requests_in_batch", args[0] if args else [])
        self._local.workload, self._local.states = _workload(scheduled, getattr(self._local, "model", ENGINE))
        rec.begin(PREPARE_INPUTS)
        try:
            return original(obj, *args, **kw)
        finally:
            rec.end(PREPARE_INPUTS)

    def _postprocess(self, rec: StageRecorder, original: Callable[..., Any], obj: Any, *args: Any, **kw: Any) -> Any:
        states: list[Any] = getattr(self._local, "states", [])
        waiting_first = [s for s in states if s.generated_len() == 0]
        rec.begin(POSTPROCESS)
        try:
            return original(obj, *args, **kw)
        finally:
            now = time.perf_counter_ns()
            rec.end(POSTPROCESS)
            workload = getattr(self._local, "workload", None)
            if workload is not None:
                rec.iteration_end(workload)
                self._local.workload = None
            first = self._first_token_ns
            for s in waiting_first:
                if s.generated_len() > 0:
                    if len(first) >= MAX_TRACKED:
                        first.clear()
                    first[s.request_id] = now
            done = [self._timing(s) for s in states if _finished(s)]
            if done:
                rec.requests_done(done)

    def _timing(self, state: Any) -> RequestTiming:
        generated = state.generated_tokens
        eos = getattr(state, "_eos_token_ids", set())
        started, ended = state.lifespan
        return RequestTiming(
            arrival_ns=_ns(state.created_time),
            scheduled_ns=_ns(started) if started >= 0 else _ns(state.created_time),
            first_token_ns=self._first_token_ns.pop(state.request_id, None),
            end_ns=_ns(ended) if ended >= 0 else time.perf_counter_ns(),
            input_tokens=len(state.initial_tokens),
            output_tokens=len(generated),
            finish_reason="stop" if generated and generated[-1] in eos else "length",
            model=getattr(self._local, "model", ENGINE),
            engine=ENGINE,
        )


def _finished(state: Any) -> bool:
    return bool(getattr(state, "lifespan", (-1, -1))[1] >= 0)


def _model_name(processor: Any) -> str:
    config = getattr(processor, "config", None)
    return str(getattr(config, "_name_or_path", "") or getattr(config, "model_type", "") or ENGINE)


def _workload(scheduled: Any, model: str) -> tuple[Workload, list[Any]]:
    states, prefill, decode, kv = [], 0, 0, 0
    inputs, outputs = [], []
    for future in scheduled:
        state, q = future.state, int(future.query_length)
        states.append(state)
        out_len = state.generated_len()
        if out_len > 0 and q == 1:
            decode += 1
        else:
            prefill += q
        kv += int(state.position_offset) + q
        inputs.append(len(state.initial_tokens))
        outputs.append(out_len)
    workload = Workload.of_batch(
        model=model,
        engine=ENGINE,
        inputs=inputs,
        outputs=outputs,
        prefill_tokens=prefill,
        decode_tokens=decode,
        kv_tokens=kv,
    )
    return workload, states
