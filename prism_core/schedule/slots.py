"""What an executor knows about each of its models: lifecycle state, queue, running batch, KV held."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from prism_core.schedule.catalogue import ModelSpec
from prism_core.schedule.cost import StepCost
from prism_core.schedule.policies import ModelQueue, PendingRequest
from prism_core.schedule.simstate import SimRequest

INACTIVE, ACTIVATING, ACTIVE = 0, 1, 2
MAX_BATCH = 256  # running requests per model, as engines cap their batch
MAX_PREFILL_TOKENS = 8192  # prompt tokens a model may admit per round (its queue cap; more waits)


class SlotQueue(ModelQueue):
    """One model's waiting requests, a heap on (admission priority, request id)."""

    __slots__ = ("heap",)

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, SimRequest]] = []

    def push(self, req: PendingRequest) -> None:
        if not isinstance(req, SimRequest):
            raise TypeError("the simulator's queues hold the requests it handed out")
        heapq.heappush(self.heap, (req.priority, req.rid, req))

    def peek(self) -> PendingRequest | None:
        return self.heap[0][2] if self.heap else None

    def pop(self) -> PendingRequest:
        return heapq.heappop(self.heap)[2]

    def __len__(self) -> int:
        return len(self.heap)


@dataclass(slots=True, eq=False)
class Slot:
    """One model on an executor."""

    index: int
    spec: ModelSpec
    cost: StepCost
    activation_s: float
    min_kv_bytes: int
    quota_bytes: float = math.inf
    state: int = INACTIVE
    ready_at: float = 0.0
    last_busy: float = 0.0
    active_since: float = 0.0
    draining: bool = False
    queue: SlotQueue = field(default_factory=SlotQueue)
    running: list[SimRequest] = field(default_factory=list)
    blocks: int = 0
    pages: int = 0
    step_prefill: int = 0

    @property
    def idle(self) -> bool:
        return not self.running and not self.queue
