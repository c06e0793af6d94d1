"""What one vLLM engine step computed, read from its SchedulerOutput, and finished requests as RequestTimings.

The workload is built on the collector thread (a lazy callable): the SchedulerOutput of a step is not changed
after the step, and the Request objects are only read for their prompt length, which never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

from prism_core.capture.workload import RequestTiming, Workload

ENGINE = "vllm"


def step_workload(scheduler_output: Any, requests: list[Any], model: str) -> Workload:
    """Workload of one step. `requests` are the scheduled requests in `num_scheduled_tokens` order (the engine
    core's Request or a worker's CachedRequestState: anything with `num_prompt_tokens`; None where gone)."""
    # (tokens already computed, tokens output so far) per scheduled request, from the step's own lists.
    before = {new.req_id: (new.num_computed_tokens, 0) for new in scheduler_output.scheduled_new_reqs}
    cached = scheduler_output.scheduled_cached_reqs
    outputs = cached.num_output_tokens  # shorter (empty) where this vLLM leaves it out
    pairs = zip(cached.num_computed_tokens, chain(outputs, repeat(0)), strict=False)
    before.update(zip(cached.req_ids, pairs, strict=False))
    prefill = decode = kv = 0
    inputs: list[int] = []
    outs: list[int] = []
    for (req_id, n), req in zip(scheduler_output.num_scheduled_tokens.items(), requests, strict=False):
        done, out = before.get(req_id, (0, 0))
        prompt = done + n if req is None else req.num_prompt_tokens
        # A request is decoding once its whole prompt is in the KV cache; a chunk of its prompt is prefill.
        if done >= prompt:
            decode += n
        else:
            prefill += n
        kv += done + n
        inputs.append(prompt)
        outs.append(out)
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
