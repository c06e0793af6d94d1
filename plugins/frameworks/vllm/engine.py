"""Stage capture for the vLLM V1 engine core: one iteration per engine step, from `Scheduler.schedule` to the end of
`Scheduler.update_from_output` (steps that schedule nothing are dropped).

    Scheduler.schedule                               ->  schedule        (new requests get their first-schedule stamp)
      GPUModelRunner.execute_model                   ->  forward         (the CPU runner inherits it)
        _update_states, _prepare_inputs, _preprocess ->  prepare_inputs  (nested: forward's time excludes them)
      GPUModelRunner.sample_tokens                   ->  sample
      Scheduler.update_from_output                   ->  postprocess     (first-token stamps, finished requests)

That is the whole picture when the model runner runs on the engine core's thread (the uniprocess executor: one
GPU, or `LLM` with VLLM_ENABLE_V1_MULTIPROCESSING=0). With the multiprocess executor (vLLM's CPU server always,
tensor parallel on GPUs) the runner is in worker processes; the engine core then records, around its own calls,
`forward` = waiting for the workers' execute_model (input preparation, the model, and the IPC, inside the
`log_error_detail` block) and `sample` = the `sample_tokens` round trip; `prepare_inputs` is not split out.
The boundaries are scheduler methods, looked up on the class at every call, so an engine built before `install`
is observed too (`EngineCore.step` is bound once, at engine start). With pipeline parallelism (the batch queue)
schedule and update_from_output of one step concern different batches; such steps are not described exactly.
Nothing here reads a tensor or waits for the device: the workload is computed later, on the collector thread,
from the step's SchedulerOutput. Detokenisation and streaming run in the API server process, outside iterations.
"""

from __future__ import annotations

import functools
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

from prism_core.capture.patching import Patcher, timed_stage
from prism_core.capture.stages import FORWARD, POSTPROCESS, PREPARE_INPUTS, SAMPLE, SCHEDULE, StageRecorder
from prism_core.capture.workload import RequestTiming
from prism_plugins.frameworks.vllm.workload import ENGINE, Tracked, step_workload, timing

# The patch points of `points()` by qualname, for `prism attach`'s stack sampling (a test keeps them in step), and
# where the engine core waits for its workers (`MultiprocExecutor.execute_model`: forward, as recorded in-process).
SAMPLED_STAGES = {
    "Scheduler.schedule": SCHEDULE,
    "Scheduler.update_from_output": POSTPROCESS,
    "MultiprocExecutor.execute_model": FORWARD,
    "MultiprocExecutor.sample_tokens": SAMPLE,
    "GPUModelRunner.execute_model": FORWARD,
    "GPUModelRunner.sample_tokens": SAMPLE,
    "GPUModelRunner._update_states": PREPARE_INPUTS,
    "GPUModelRunner._prepare_inputs": PREPARE_INPUTS,
    "GPUModelRunner._preprocess": PREPARE_INPUTS,
}
MAX_TRACKED = 100_000  # requests that never finish (lost aborts) are forgotten past this
RUNNER = "vllm.v1.worker.gpu_model_runner"
# How vLLM's multiprocess executor names its worker processes (vllm/v1/executor/multiproc_executor.py). There the
# model runner never runs inside an engine step of its own process, so its wrappers would only pass calls through,
# and that costs: 45-55 us per step in the worker after each forward pass (`bench --stage-cost --multiprocess`).
WORKER_PROCESS_PREFIX = "VllmWorker-"

Wrapper = Callable[[Callable[..., Any]], Callable[..., Any]]


class EngineInstrumentation:
    """Wrappers for vLLM's engine core, scheduler and model runner; all pass straight through without a recorder."""

    def __init__(self, patcher: Patcher) -> None:
        self.recorder: StageRecorder | None = None
        self.model = ENGINE
        self._patcher = patcher
        self._local = threading.local()
        self._tracked: dict[str, Tracked] = {}
        self._awaiting_first: dict[str, Tracked] = {}
        self._named = False
        self._runner_here = False  # the model runner ran on an engine-step thread of this process

    def points(self) -> dict[str, list[tuple[str, str, Wrapper]]]:
        """Patch points by module: (class, attribute, wrapper factory). Modules are patched as they are imported."""
        prepare = functools.partial(self._wrap_local, PREPARE_INPUTS)
        return {
            "vllm.v1.engine.core": [
                ("EngineCore", "log_error_detail", self._wrap_remote_block),
            ],
            "vllm.v1.executor.multiproc_executor": [
                ("MultiprocExecutor", "sample_tokens", self._wrap_remote_sample),
            ],
            "vllm.v1.core.sched.scheduler": [
                ("Scheduler", "schedule", self._wrap_schedule),
                ("Scheduler", "update_from_output", self._wrap_update),
            ],
            RUNNER: [
                ("GPUModelRunner", "execute_model", self._wrap_execute),
                ("GPUModelRunner", "sample_tokens", functools.partial(self._wrap_local, SAMPLE)),
                ("GPUModelRunner", "_update_states", prepare),
                ("GPUModelRunner", "_prepare_inputs", prepare),
                ("GPUModelRunner", "_preprocess", prepare),
            ],
        }

    def patch_module(self, module: Any) -> list[str]:
        """Patch every point of an imported module; returns the points this vLLM lacks (left alone). The model
        runner is left alone in a multiprocess executor's worker (the engine core records its calls)."""
        if module.__name__ == RUNNER and multiprocessing.current_process().name.startswith(WORKER_PROCESS_PREFIX):
            return []
        missing = []
        for cls_name, attr, make in self.points()[module.__name__]:
            owner = getattr(module, cls_name, None)
            if owner is None or not callable(getattr(owner, attr, None)):
                missing.append(f"{module.__name__}.{cls_name}.{attr}")
            elif not self._patcher.is_patched(owner, attr):
                self._patcher.wrap(owner, attr, make)
        return missing

    # Engine core ----------------------------------------------------------------------------------------------

    def _wrap_schedule(self, original: Callable[..., Any]) -> Callable[..., Any]:
        inst = self

        @functools.wraps(original)
        def schedule(scheduler: Any, *args: Any, **kwargs: Any) -> Any:
            rec = inst.recorder
            if rec is None:
                return original(scheduler, *args, **kwargs)
            local = inst._local
            rec.iteration_begin()  # a step that schedules nothing stays open: the next begin discards it
            local.in_step, local.workload = True, None
            rec.begin(SCHEDULE)
            out = None
            try:
                out = original(scheduler, *args, **kwargs)
                return out
            finally:
                if out is not None and out.total_num_scheduled_tokens > 0:
                    inst._scheduled(scheduler, out)
                rec.end(SCHEDULE)

        return schedule

    def _scheduled(self, scheduler: Any, out: Any) -> None:
        if not self._named:
            self.model = _served_name(scheduler)
            self._named = True
        requests = scheduler.requests
        if out.scheduled_new_reqs:
            now = time.perf_counter_ns()
            wall_minus_perf = time.time_ns() - now
            tracked = self._tracked
            if len(tracked) >= MAX_TRACKED:
                tracked.clear()
                self._awaiting_first.clear()
            for new in out.scheduled_new_reqs:
                req = requests.get(new.req_id)
                if req is not None and new.req_id not in tracked:
                    # The API server stamps arrival with time.time(); the same host clock, moved to perf_counter.
                    t = Tracked(req, int(req.arrival_time * 1e9) - wall_minus_perf, now)
                    tracked[new.req_id] = self._awaiting_first[new.req_id] = t
        self._local.workload = functools.partial(
            step_workload, out, list(map(requests.get, out.num_scheduled_tokens)), self.model
        )

    def _wrap_update(self, original: Callable[..., Any]) -> Callable[..., Any]:
        inst = self

        @functools.wraps(original)
        def update_from_output(scheduler: Any, *args: Any, **kwargs: Any) -> Any:
            rec = inst.recorder
            if rec is None:
                return original(scheduler, *args, **kwargs)
            rec.begin(POSTPROCESS)
            try:
                return original(scheduler, *args, **kwargs)
            finally:
                inst._after_update(rec, scheduler)
                rec.end(POSTPROCESS)
                local = inst._local
                workload, local.workload, local.in_step = getattr(local, "workload", None), None, False
                if workload is not None:
                    rec.iteration_end(workload)

        return update_from_output

    def _after_update(self, rec: StageRecorder, scheduler: Any) -> None:
        now = time.perf_counter_ns()
        awaiting = self._awaiting_first
        if awaiting:
            for req_id in [i for i, t in awaiting.items() if t.request.num_output_tokens > 0]:
                awaiting.pop(req_id).first_token_ns = now
        finished = scheduler.finished_req_ids  # freed since the last schedule(): this step's finished requests
        if finished:
            done = [t for i in finished if (t := self._tracked.pop(i, None)) is not None]
            for i in finished:
                awaiting.pop(i, None)
            if done:
                rec.requests_done(functools.partial(_timings, done, now, self.model))

    # Model runner ---------------------------------------------------------------------------------------------

    def _wrap_local(self, stage: str, original: Callable[..., Any]) -> Callable[..., Any]:
        """A model-runner stage, recorded when the runner runs inside an engine step on this thread."""
        return timed_stage(stage, original, self._in_step)

    def _in_step(self) -> StageRecorder | None:
        """The recorder while an engine step runs on this thread; else None (a worker process)."""
        return self.recorder if getattr(self._local, "in_step", False) else None

    def _remote(self) -> StageRecorder | None:
        """The recorder, where this engine step's model runner runs in other processes; else None."""
        rec = self.recorder
        if rec is None or self._runner_here or not getattr(self._local, "in_step", False):
            return None
        return rec

    def _wrap_remote_block(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """`EngineCore.log_error_detail(...)` returns a context manager around the wait for the workers."""
        inst = self

        @functools.wraps(original)
        def log_error_detail(core: Any, *args: Any, **kwargs: Any) -> Any:
            cm = original(core, *args, **kwargs)
            rec = inst._remote()
            return cm if rec is None else _StageBlock(cm, rec, FORWARD)

        return log_error_detail

    def _wrap_remote_sample(self, original: Callable[..., Any]) -> Callable[..., Any]:
        return timed_stage(SAMPLE, original, self._remote)

    def _wrap_execute(self, original: Callable[..., Any]) -> Callable[..., Any]:
        inst = self

        @functools.wraps(original)
        def execute_model(runner: Any, *args: Any, **kwargs: Any) -> Any:
            rec = inst._in_step()
            if rec is None:  # a worker process: not recorded here
                return original(runner, *args, **kwargs)
            inst._runner_here = True
            rec.begin(FORWARD)
            try:
                return original(runner, *args, **kwargs)
            finally:
                rec.end(FORWARD)

        return execute_model


class _StageBlock:
    """Wraps a context manager so its block is one stage."""

    __slots__ = ("_cm", "_rec", "_stage")

    def __init__(self, cm: Any, rec: StageRecorder, stage: str) -> None:
        self._cm, self._rec, self._stage = cm, rec, stage

    def __enter__(self) -> Any:
        self._rec.begin(self._stage)
        return self._cm.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._cm.__exit__(*exc)
        finally:
            self._rec.end(self._stage)


def _timings(done: list[Tracked], end_ns: int, model: str) -> list[RequestTiming]:
    return [timing(t, end_ns, model) for t in done]


def _served_name(obj: Any) -> str:
    """The model name vLLM reports (`--served-model-name`, else the model path)."""
    config = getattr(getattr(obj, "vllm_config", None), "model_config", None)
    name = getattr(config, "served_model_name", None) or getattr(config, "model", None)
    if isinstance(name, list | tuple):
        name = name[0] if name else None
    return str(name) if name else ENGINE
