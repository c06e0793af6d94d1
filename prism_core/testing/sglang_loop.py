"""A stand-in for SGLang's scheduler loop (SGLang has no CPU build), replaying its call sequences.

`event_loop_normal` and `event_loop_overlap` call `get_next_batch_to_run`, `run_batch` and `process_batch_result`
in the order SGLang's own loops do (python/sglang/srt/managers/scheduler.py, 0.4-0.5): in the overlap loop the
result of batch i is processed after batch i+1 is launched. Requests gain one token per run and finish at their
`max_new_tokens`. Only the attributes Prism's SGLang adapter reads are modelled.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FinishLength:
    length: int

    def to_json(self) -> dict[str, Any]:
        return {"type": "length", "length": self.length}


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int


@dataclass
class Req:
    rid: str
    origin_input_ids: list[int]
    max_new_tokens: int
    output_ids: list[int] = field(default_factory=list)
    finished_reason: FinishLength | None = None

    @property
    def sampling_params(self) -> SamplingParams:
        return SamplingParams(self.max_new_tokens)

    def finished(self) -> bool:
        return self.finished_reason is not None


@dataclass(frozen=True)
class ForwardMode:
    name: str

    def is_decode(self) -> bool:
        return self.name == "decode"

    def is_mixed(self) -> bool:
        return self.name == "mixed"


@dataclass
class ScheduleBatch:
    reqs: list[Req]
    forward_mode: ForwardMode
    extend_num_tokens: int
    seq_lens_sum: int


class Scheduler:
    """`waiting` requests are admitted all at once (one prefill batch), then decoded together until done."""

    def __init__(self, waiting: list[Req], model_path: str = "stand-in") -> None:
        self.waiting = list(waiting)
        self.running: list[Req] = []
        self.model_config = type("ModelConfig", (), {"model_path": model_path})()
        self.last_batch: ScheduleBatch | None = None
        self.calls: list[str] = []

    def get_next_batch_to_run(self) -> ScheduleBatch | None:
        self.calls.append("get_next_batch_to_run")
        if self.waiting:
            new, self.waiting = self.waiting, []
            self.running.extend(new)
            tokens = sum(len(r.origin_input_ids) for r in new)
            return ScheduleBatch(new, ForwardMode("extend"), tokens, tokens)
        live = [r for r in self.running if not r.finished()]
        self.running = live
        if not live:
            return None
        kv = sum(len(r.origin_input_ids) + len(r.output_ids) for r in live)
        return ScheduleBatch(list(live), ForwardMode("decode"), 0, kv)

    def run_batch(self, batch: ScheduleBatch) -> list[int]:
        self.calls.append("run_batch")
        return [len(r.output_ids) + 7 for r in batch.reqs]  # "sampled" tokens

    def process_batch_result(self, batch: ScheduleBatch, result: list[int]) -> None:
        self.calls.append("process_batch_result")
        for req, token in zip(batch.reqs, result, strict=True):
            if req.finished():  # overlap: launched before its previous result said it was done
                continue
            req.output_ids.append(token)
            if len(req.output_ids) >= req.max_new_tokens:
                req.finished_reason = FinishLength(len(req.output_ids))

    def event_loop_normal(self, passes: int) -> None:
        for _ in range(passes):
            batch = self.get_next_batch_to_run()
            if batch:
                self.process_batch_result(batch, self.run_batch(batch))
            self.last_batch = batch

    def event_loop_overlap(self, passes: int) -> None:
        results: deque[tuple[ScheduleBatch, list[int]]] = deque()
        for _ in range(passes):
            batch = self.get_next_batch_to_run()
            if batch:
                results.append((batch, self.run_batch(batch)))
            if self.last_batch:
                self.process_batch_result(*results.popleft())
            self.last_batch = batch
