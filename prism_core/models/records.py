"""Records that leave the engine: one per batch iteration, one per request, one per alert.

These are the JSONL contract (README, "Record format"). Bump SCHEMA_VERSION on any change a reader would notice.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from prism_core.models.base import Frozen

SCHEMA_VERSION = 1

ForwardMode = Literal["prefill", "decode", "mixed"]


class StageTiming(Frozen):
    wall_ns: int = Field(ge=0)
    device_ns: int | None = Field(None, ge=0, description="time on the device, where the timing backend gives it")


class BatchRecord(Frozen):
    """One engine iteration: its workload and where its time went."""

    kind: Literal["batch"] = "batch"
    schema_version: int = SCHEMA_VERSION
    start_ns: int
    duration_ns: int = Field(ge=0)
    mode: ForwardMode
    batch_size: int = Field(ge=0)
    prefill_tokens: int = Field(0, ge=0)
    decode_tokens: int = Field(0, ge=0)
    avg_input_len: float = Field(0.0, ge=0)
    max_input_len: int = Field(0, ge=0)
    avg_output_len: float = Field(0.0, ge=0)
    max_output_len: int = Field(0, ge=0)
    kv_tokens: int = Field(0, ge=0)
    model: str
    engine: str
    device: str
    pid: int
    stages: dict[str, StageTiming] = Field(default_factory=dict)


class RequestRecord(Frozen):
    """One finished request, with the latencies users are billed in."""

    kind: Literal["request"] = "request"
    schema_version: int = SCHEMA_VERSION
    arrival_ns: int
    queue_s: float = Field(ge=0)
    ttft_s: float | None = Field(None, ge=0)
    tpot_s: float | None = Field(None, ge=0)
    e2e_s: float = Field(ge=0)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    finish_reason: str
    model: str


class Alert(Frozen):
    """A batch (or window of batches) whose latency the workload does not explain."""

    kind: Literal["alert"] = "alert"
    schema_version: int = SCHEMA_VERSION
    ts_ns: int = Field(description="when the alert was raised (time.time_ns)")
    batch_start_ns: int
    model: str
    device: str
    score: float = Field(description="the control chart's statistic that crossed the threshold")
    threshold: float
    message: str
    suspects: list[str] = Field(default_factory=list, description="diagnosis, most likely first")


Record = BatchRecord | RequestRecord | Alert
