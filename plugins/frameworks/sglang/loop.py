"""Stage capture for SGLang's scheduler loop (`sglang.srt.managers.scheduler.Scheduler`), normal and overlap.

    Scheduler.get_next_batch_to_run   ->  schedule     (a loop pass, and so an iteration, starts here)
    Scheduler.run_batch               ->  forward      (normal loop: forward and sampling; overlap: the launch)
    Scheduler.process_batch_result    ->  postprocess  (finished requests, first-token stamps)

One iteration is one pass of the loop, from one `get_next_batch_to_run` to the next. In the normal loop a pass
schedules, runs and post-processes the same batch. In the overlap loop (the default on GPUs) the post-processing
of batch i runs while the device computes batch i+1, so a pass holds the schedule and launch of batch i+1 and the
post-processing of batch i (where SGLang waits for batch i's tokens); its workload is that of the batch it
launched, or of the batch it post-processed when it launched none. Idle passes (no batch, nothing processed)
record nothing. Written from SGLang's source (0.4-0.5 loop shape) and tested against recorded call sequences;
SGLang has no CPU build to run here.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from prism_core.capture.patching import Patcher, timed_stage
from prism_core.capture.stages import FORWARD, POSTPROCESS, SCHEDULE, StageRecorder
from prism_core.capture.workload import RequestTiming, Workload

ENGINE = "sglang"
# The patch points by qualname, for `prism attach`'s stack sampling.
SAMPLED_STAGES = {
    "Scheduler.get_next_batch_to_run": SCHEDULE,
    "Scheduler.run_batch": FORWARD,
    "Scheduler.process_batch_result": POSTPROCESS,
}
MAX_TRACKED = 100_000


def batch_workload(batch: Any, model: str) -> Workload:
    """Read on the scheduler thread: SGLang reuses and mutates its batch objects in later passes."""
    reqs = list(getattr(batch, "reqs", ()) or ())
    mode_obj = getattr(batch, "forward_mode", None)
    size = len(reqs)
    inputs = [len(r.origin_input_ids) for r in reqs]
    outputs = [len(r.output_ids) for r in reqs]
    if mode_obj is not None and mode_obj.is_decode():
        mode, prefill, decode = "decode", 0, size
    else:
        prefill = int(getattr(batch, "extend_num_tokens", 0) or 0)
        is_mixed = mode_obj is not None and getattr(mode_obj, "is_mixed", lambda: False)()
        decode = sum(1 for n in outputs if n > 0) if is_mixed else 0
        mode = "mixed" if is_mixed else "prefill"
    kv = getattr(batch, "seq_lens_sum", None)
    return Workload.of_batch(
        model=model,
        engine=ENGINE,
        inputs=inputs,
        outputs=outputs,
        prefill_tokens=prefill,
        decode_tokens=decode,
        kv_tokens=int(kv) if kv is not None else sum(inputs) + sum(outputs),
        mode=mode,  # type: ignore[arg-type]
    )


class SchedulerInstrumentation:
    def __init__(self, patcher: Patcher) -> None:
        self.recorder: StageRecorder | None = None
        self.model = ENGINE
        self._patcher = patcher
        self._local = threading.local()
        self._seen: dict[str, tuple[int, int]] = {}  # rid -> (arrival, first scheduled), perf_counter_ns
        self._first_token: dict[str, int] = {}

    def patch(self, scheduler_cls: type) -> None:
        for name, make in (
            ("get_next_batch_to_run", self._wrap_schedule),
            ("run_batch", self._wrap_forward),
            ("process_batch_result", self._wrap_postprocess),
        ):
            if not self._patcher.is_patched(scheduler_cls, name):
                self._patcher.wrap(scheduler_cls, name, make)

    def _close_pass(self, rec: StageRecorder) -> bool:
        """End the open pass if it did anything; returns whether it did."""
        local = self._local
        workload = getattr(local, "launched", None) or getattr(local, "processed", None)
        local.launched = local.processed = None
        if workload is not None:
            rec.iteration_end(workload)
        return workload is not None

    def _wrap_schedule(self, original: Callable[..., Any]) -> Callable[..., Any]:
        inst = self

        @functools.wraps(original)
        def get_next_batch_to_run(scheduler: Any, *args: Any, **kwargs: Any) -> Any:
            rec = inst.recorder
            if rec is None:
                return original(scheduler, *args, **kwargs)
            busy = inst._close_pass(rec)
            if not busy:  # idle loop: only a pass that finds a batch opens an iteration (its schedule unmeasured)
                result = original(scheduler, *args, **kwargs)
                batch = getattr(result, "batch_to_run", result)  # newer SGLang returns a plan object
                if batch:
                    rec.iteration_begin()
                    inst._scheduled(scheduler, batch)
                return result
            rec.iteration_begin()
            rec.begin(SCHEDULE)
            try:
                result = original(scheduler, *args, **kwargs)
                batch = getattr(result, "batch_to_run", result)
                if batch:
                    inst._scheduled(scheduler, batch)
                return result
            finally:
                rec.end(SCHEDULE)

        return get_next_batch_to_run

    def _scheduled(self, scheduler: Any, batch: Any) -> None:
        if self.model == ENGINE:
            config = getattr(scheduler, "model_config", None)
            self.model = str(getattr(config, "model_path", "") or getattr(scheduler, "served_model_name", "") or ENGINE)
        now = time.perf_counter_ns()
        seen = self._seen
        if len(seen) >= MAX_TRACKED:
            seen.clear()
            self._first_token.clear()
        for req in batch.reqs:
            if req.rid not in seen:
                stats = getattr(req, "time_stats", None)
                queued = getattr(stats, "wait_queue_entry_time", 0.0) or 0.0  # perf_counter seconds, where given
                seen[req.rid] = (int(queued * 1e9) if 0 < queued * 1e9 <= now else now, now)
        self._local.launched = batch_workload(batch, self.model)

    def _wrap_forward(self, original: Callable[..., Any]) -> Callable[..., Any]:
        return timed_stage(FORWARD, original, lambda: self.recorder)

    def _wrap_postprocess(self, original: Callable[..., Any]) -> Callable[..., Any]:
        inst = self

        @functools.wraps(original)
        def process_batch_result(scheduler: Any, batch: Any, *args: Any, **kwargs: Any) -> Any:
            rec = inst.recorder
            if rec is None:
                return original(scheduler, batch, *args, **kwargs)
            rec.begin(POSTPROCESS)
            try:
                return original(scheduler, batch, *args, **kwargs)
            finally:
                inst._processed(rec, batch)
                rec.end(POSTPROCESS)

        return process_batch_result

    def _processed(self, rec: StageRecorder, batch: Any) -> None:
        now = time.perf_counter_ns()
        if getattr(self._local, "launched", None) is None:
            self._local.processed = batch_workload(batch, self.model)
        done = []
        for req in batch.reqs:
            if req.rid not in self._first_token and req.output_ids:
                self._first_token[req.rid] = now
            # In the overlap loop a finished request may sit in the next, already launched batch: report it once.
            if req.finished() and req.rid in self._seen:
                arrival, scheduled = self._seen.pop(req.rid)
                reason = getattr(req, "finished_reason", None)
                kind = reason.to_json().get("type", "stop") if hasattr(reason, "to_json") else "stop"
                done.append(
                    RequestTiming(
                        arrival_ns=arrival,
                        scheduled_ns=scheduled,
                        first_token_ns=self._first_token.pop(req.rid, None),
                        end_ns=now,
                        input_tokens=len(req.origin_input_ids),
                        output_tokens=len(req.output_ids),
                        finish_reason=str(kind),
                        model=self.model,
                        engine=ENGINE,
                    )
                )
        if done:
            rec.requests_done(done)
