"""`generate()`: every model forward is one iteration, cut into sequential stages at four points.

    prepare_inputs_for_generation()  ->  prepare_inputs   (a new iteration starts here)
    model forward (pre-hook)         ->  forward
    model forward (post-hook)        ->  sample           (logits processors, token choice, concatenation)
    StoppingCriteriaList.__call__    ->  postprocess      (stop checks, streamer, loop bookkeeping)

Each point ends the stage before it, so the stages tile the iteration. The first iteration is the prefill, the
rest decode. Per-row lengths and finished requests are computed on the collector thread from the tensors kept
here (no tensor is read on the engine's thread). Only greedy and sampling decoding loops are described exactly;
other strategies (beam search, assisted decoding) still get one iteration per forward.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prism_core.capture.patching import Patcher
from prism_core.capture.stages import FORWARD, POSTPROCESS, PREPARE_INPUTS, SAMPLE, StageRecorder
from prism_core.capture.workload import RequestTiming, Workload

ENGINE = "transformers"


@dataclass(slots=True)
class _Batch:
    """The prompt batch of one generate() call; lengths are read lazily, off the engine's thread."""

    model: str
    arrival_ns: int
    input_ids: Any = None
    attention_mask: Any = None
    criteria: Any = None
    _lens: list[int] | None = None

    def input_lens(self) -> list[int]:
        if self._lens is None:
            if self.input_ids is None:
                self._lens = []
            elif self.attention_mask is not None and tuple(self.attention_mask.shape) == tuple(self.input_ids.shape):
                self._lens = [int(n) for n in self.attention_mask.sum(-1).tolist()]
            else:
                rows, cols = self.input_ids.shape[0], self.input_ids.shape[-1]
                self._lens = [int(cols)] * int(rows)
        return self._lens


def workload(batch: _Batch, generated: int) -> Workload:
    """The iteration that follows `generated` earlier iterations of this generate() call."""
    lens = batch.input_lens()
    size = len(lens)
    total = sum(lens)
    common = {
        "batch_size": size,
        "model": batch.model,
        "engine": ENGINE,
        "avg_input_len": total / size if size else 0.0,
        "max_input_len": max(lens, default=0),
    }
    if generated == 0:
        return Workload(mode="prefill", prefill_tokens=total, kv_tokens=total, **common)  # type: ignore[arg-type]
    return Workload(
        mode="decode",
        decode_tokens=size,
        avg_output_len=float(generated),
        max_output_len=generated,
        kv_tokens=total + size * generated,
        **common,  # type: ignore[arg-type]
    )


def requests(batch: _Batch, output: Any, token_ns: list[int], end_ns: int) -> list[RequestTiming]:
    """One request per prompt row: its tokens end at its first EOS (inclusive) or at the last step."""
    sequences = getattr(output, "sequences", output)
    if batch.input_ids is None or not hasattr(sequences, "tolist"):
        return []
    prompt = int(batch.input_ids.shape[-1])
    eos = _eos_ids(batch.criteria) if batch.criteria is not None else frozenset()
    out = []
    for row, input_len in zip(sequences[:, prompt:].tolist(), batch.input_lens(), strict=False):
        n, reason = len(row), "length"
        for i, token in enumerate(row):
            if token in eos:
                n, reason = i + 1, "stop"
                break
        n = min(n, len(token_ns))
        out.append(
            RequestTiming(
                arrival_ns=batch.arrival_ns,
                scheduled_ns=batch.arrival_ns,
                first_token_ns=token_ns[0] if n else None,
                end_ns=token_ns[n - 1] if n else end_ns,
                input_tokens=input_len,
                output_tokens=n,
                finish_reason=reason,
                model=batch.model,
                engine=ENGINE,
            )
        )
    return out


@dataclass(slots=True)
class _Call:
    """State of one generate() call on one thread."""

    recorder: StageRecorder
    batch: _Batch
    stage: str | None = None
    generated_at_start: int = 0
    token_ns: list[int] = field(default_factory=list)

    def enter(self, stage: str, *, new_iteration: bool) -> None:
        rec = self.recorder
        if self.stage is not None:
            rec.end(self.stage)
            if new_iteration:
                rec.iteration_end(functools.partial(workload, self.batch, self.generated_at_start))
        if new_iteration or self.stage is None:
            rec.iteration_begin()
            self.generated_at_start = len(self.token_ns)
        rec.begin(stage)
        self.stage = stage

    def close(self) -> None:
        if self.stage is not None:
            self.recorder.end(self.stage)
            self.recorder.iteration_end(functools.partial(workload, self.batch, self.generated_at_start))
            self.stage = None


def _model_name(model: Any) -> str:
    name = getattr(model, "name_or_path", "") or getattr(getattr(model, "config", None), "_name_or_path", "")
    return str(name) or type(model).__name__


class GenerateInstrumentation:
    """Patches transformers' generation loop; all hooks are no-ops outside an instrumented generate() call."""

    def __init__(self, patcher: Patcher) -> None:
        self.recorder: StageRecorder | None = None
        self._patcher = patcher
        self._local = threading.local()

    def install(self, recorder: StageRecorder) -> None:
        from transformers.generation.stopping_criteria import StoppingCriteriaList
        from transformers.generation.utils import GenerationMixin

        self.recorder = recorder
        if not self._patcher.is_patched(GenerationMixin, "generate"):
            self._patcher.wrap(GenerationMixin, "generate", self.wrap_generate)
            self._patcher.wrap(StoppingCriteriaList, "__call__", self.wrap_stopping)

    def ensure_prepare_patched(self, cls: type) -> None:
        """Patch prepare_inputs_for_generation where `cls` gets it from (models may override the mixin's)."""
        owner = next((k for k in cls.__mro__ if "prepare_inputs_for_generation" in k.__dict__), None)
        if owner is not None and not self._patcher.is_patched(owner, "prepare_inputs_for_generation"):
            self._patcher.wrap(owner, "prepare_inputs_for_generation", self.wrap_prepare)

    def _current(self) -> _Call | None:
        stack: list[_Call] | None = getattr(self._local, "stack", None)
        return stack[-1] if stack else None

    # Wrappers, built once per patched attribute ------------------------------------------------------------

    def wrap_generate(self, original: Callable[..., Any]) -> Callable[..., Any]:
        instrumentation = self

        @functools.wraps(original)
        def generate(model: Any, *args: Any, **kwargs: Any) -> Any:
            recorder = instrumentation.recorder
            if recorder is None:
                return original(model, *args, **kwargs)
            instrumentation.ensure_prepare_patched(type(model))
            call = _Call(recorder, _Batch(_model_name(model), time.perf_counter_ns()))
            stack = instrumentation._local.__dict__.setdefault("stack", [])
            stack.append(call)
            pre = model.register_forward_pre_hook(instrumentation._forward_pre)
            post = model.register_forward_hook(instrumentation._forward_post)
            output = None
            try:
                output = original(model, *args, **kwargs)
                return output
            finally:
                pre.remove()
                post.remove()
                stack.pop()
                call.close()
                if output is not None:
                    recorder.requests_done(
                        functools.partial(requests, call.batch, output, call.token_ns, time.perf_counter_ns())
                    )

        return generate

    def wrap_prepare(self, original: Callable[..., Any]) -> Callable[..., Any]:
        instrumentation = self

        @functools.wraps(original)
        def prepare_inputs_for_generation(model: Any, input_ids: Any, *args: Any, **kwargs: Any) -> Any:
            call = instrumentation._current()
            if call is not None and call.stage != PREPARE_INPUTS:
                if call.batch.input_ids is None:  # the first call sees the whole prompt and its mask
                    call.batch.input_ids = input_ids
                    call.batch.attention_mask = kwargs.get("attention_mask")
                call.enter(PREPARE_INPUTS, new_iteration=call.stage is not None)
            return original(model, input_ids, *args, **kwargs)

        return prepare_inputs_for_generation

    def wrap_stopping(self, original: Callable[..., Any]) -> Callable[..., Any]:
        instrumentation = self

        @functools.wraps(original)
        def __call__(criteria: Any, *args: Any, **kwargs: Any) -> Any:
            call = instrumentation._current()
            if call is not None and call.stage in (SAMPLE, FORWARD):
                call.token_ns.append(time.perf_counter_ns())
                call.enter(POSTPROCESS, new_iteration=False)
                call.batch.criteria = criteria
            return original(criteria, *args, **kwargs)

        return __call__

    def _forward_pre(self, module: Any, args: Any) -> None:
        call = self._current()
        if call is not None and call.stage != FORWARD:
            call.enter(FORWARD, new_iteration=call.stage in (SAMPLE, POSTPROCESS))

    def _forward_post(self, module: Any, args: Any, output: Any) -> None:
        call = self._current()
        if call is not None and call.stage == FORWARD:
            call.enter(SAMPLE, new_iteration=False)


def _eos_ids(criteria: Any) -> frozenset[int]:
    ids: set[int] = set()
    for criterion in criteria:
        eos = getattr(criterion, "eos_token_id", None)
        if eos is not None:
            ids.update(int(t) for t in (eos.flatten().tolist() if hasattr(eos, "flatten") else [eos]))
    return frozenset(i for i in ids if i >= 0)
