"""Hot-path facts an adapter hands the recorder: what one iteration computed, and when a request's milestones fell.

Plain slotted dataclasses, not pydantic: they are built on the engine's thread. Times are `time.perf_counter_ns()`
readings; the collector turns them into wall-clock times when it builds the exported records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prism_core.models import ForwardMode


@dataclass(slots=True)
class Workload:
    """What one engine iteration computed (the BatchRecord's workload fields)."""

    mode: ForwardMode
    batch_size: int
    model: str
    engine: str
    prefill_tokens: int = 0
    decode_tokens: int = 0
    avg_input_len: float = 0.0
    max_input_len: int = 0
    avg_output_len: float = 0.0
    max_output_len: int = 0
    kv_tokens: int = 0


@dataclass(slots=True)
class RequestTiming:
    """One finished request's milestones (perf_counter_ns) and sizes."""

    arrival_ns: int
    scheduled_ns: int
    first_token_ns: int | None
    end_ns: int
    input_tokens: int
    output_tokens: int
    finish_reason: str
    model: str
    engine: str


# An adapter may pass a zero-argument callable instead of the value: the collector calls it on its own thread,
# so work that would read tensors (lengths from an attention mask, tokens from the output) stays off the engine.
LazyWorkload = Workload | Callable[[], Workload]
LazyRequests = Iterable[RequestTiming] | Callable[[], Iterable[RequestTiming]]
