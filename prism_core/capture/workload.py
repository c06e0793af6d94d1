"""Hot-path facts an adapter hands the recorder: what one iteration computed, and when a request's milestones fell.

Plain slotted dataclasses, not pydantic: they are built on the engine's thread. Times are `time.perf_counter_ns()`
readings; the collector turns them into wall-clock times when it builds the exported records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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

    @classmethod
    def of_batch(
        cls,
        *,
        model: str,
        engine: str,
        inputs: Sequence[int],
        outputs: Sequence[int],
        prefill_tokens: int,
        decode_tokens: int,
        kv_tokens: int,
        mode: ForwardMode | None = None,
    ) -> Workload:
        """From per-request prompt and output lengths; the mode follows from the token counts unless given."""
        n = len(inputs)
        if mode is None:
            mode = "mixed" if prefill_tokens and decode_tokens else ("decode" if decode_tokens else "prefill")
        return cls(
            mode=mode,
            batch_size=n,
            model=model,
            engine=engine,
            prefill_tokens=prefill_tokens,
            decode_tokens=decode_tokens,
            avg_input_len=sum(inputs) / n if n else 0.0,
            max_input_len=max(inputs, default=0),
            avg_output_len=sum(outputs) / n if n else 0.0,
            max_output_len=max(outputs, default=0),
            kv_tokens=kv_tokens,
        )


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
