"""What one vLLM engine step computed, read from its SchedulerOutput, and finished requests as RequestTimings.

The workload is built on the collector thread (a lazy callable): the SchedulerOutput of a step is not changed
after the step, and the Request objects are only read for their prompt length, which never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prism_core.capture.workload import RequestTiming, Workload

ENGINE = "vllm"


def step_workload(scheduler_output: Any, requests: list[Any], model: str) -> Workload:
    """Workload of one step. `requests` are the scheduled requests in `num_scheduled_tokens` order (the engine
    core's Request or a worker's CachedRequestState: anything with `num_prompt_tokens`; None where gone)."""
    scheduled: dict[str, int] = scheduler_output.num_scheduled_tokens
    computed: dict[str, int] = {}
    outputs: dict[str, int] = {}
    for new in scheduler_output.scheduled_new_reqs:
        computed[new.req_id] = int(new.num_computed_tokens)
        outputs[new.req_id] = 0
    cached = scheduler_output.scheduled_cached_reqs
    for i, req_id in enumerate(cached.req_ids):
        computed[req_id] = int(cached.num_computed_tokens[i])
        outputs[req_id] = int(cached.num_output_tokens[i]) if i < len(cached.num_output_tokens) else 0
    prompt_len = {i: int(r.num_prompt_tokens) for i, r in zip(scheduled, requests, strict=False) if r is not None}
    prefill = decode = kv = 0
    inputs: list[int] = []
    outs: list[int] = []
    for req_id, n in scheduled.items():
        done = computed.get(req_id, 0)
        prompt = prompt_len.get(req_id, done + n)
        # A request is decoding once its whole prompt is in the KV cache; a chunk of its prompt is prefill.
        if done >= prompt:
            decode += n
        else:
            prefill += n
        kv += done + n
        inputs.append(prompt)
        outs.append(outputs.get(req_id, 0))
    return Workload.of_batch(
        model=model,
        engine=ENGINE,
        inputs=inputs,
        outputs=outs,
        prefill_tokens=prefill,
        decode_tokens=decode,
        kv_tokens=kv,
    )


@dataclass(slots=True)
class Tracked:
    """A request from its first scheduling to its end, as seen by the engine core (perf_counter_ns)."""

    request: Any
    arrival_ns: int
    scheduled_ns: int
    first_token_ns: int | None = None


def timing(tracked: Tracked, end_ns: int, model: str) -> RequestTiming:
    req = tracked.request
    reason = req.get_finished_reason()
    return RequestTiming(
        arrival_ns=tracked.arrival_ns,
        scheduled_ns=tracked.scheduled_ns,
        first_token_ns=tracked.first_token_ns,
        end_ns=end_ns,
        input_tokens=int(req.num_prompt_tokens),
        output_tokens=int(req.num_output_tokens),
        finish_reason=str(getattr(reason, "name", reason) or "abort").lower(),
        model=model,
        engine=ENGINE,
    )
