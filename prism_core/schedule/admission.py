"""Built-in admission policies: one queue across a device's co-located models, in priority order.

`least-slack` is Prism's local scheduler: requests ordered by arrival + TTFT SLO - estimated prefill time, the
latest moment their prefill can start and still meet the SLO; `fcfs` orders by arrival. Both admit the
cheapest-slack head among the models' queues while the device's budget (the memory broker, or the simulator's
model of it) takes it; a model whose head does not fit is skipped for this round, so one model's large prompt
never blocks the others (the per-model cap on what each round admits is the budget's).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

from prism_core.schedule.policies import AdmissionBudget, ModelQueue, PendingRequest


class _OrderedAdmission:
    name: str
    description: str

    def priority(self, request: PendingRequest) -> float:
        raise NotImplementedError

    def admit(self, queues: Mapping[int, ModelQueue], budget: AdmissionBudget) -> list[PendingRequest]:
        heads: list[tuple[float, int]] = []
        for model, queue in queues.items():
            head = queue.peek()
            if head is not None:
                heads.append((head.priority, model))
        heapq.heapify(heads)
        admitted: list[PendingRequest] = []
        while heads:
            _, model = heapq.heappop(heads)
            queue = queues[model]
            head = queue.peek()
            if head is None or not budget.try_admit(head):
                continue
            admitted.append(queue.pop())
            nxt = queue.peek()
            if nxt is not None:
                heapq.heappush(heads, (nxt.priority, model))
        return admitted


LATE = 1e12  # added to the priority of a request that can no longer meet its TTFT SLO


@dataclass(slots=True)
class LeastSlack(_OrderedAdmission):
    """Least slack first; a request whose slack is already spent goes behind every request that can still make
    its SLO (it is a miss either way, and serving it first would make the ones behind it miss too)."""

    name: str = "least-slack"
    description: str = "one queue across co-located models, least slack first; hopeless requests last"

    def priority(self, request: PendingRequest) -> float:
        return request.arrival_s + request.slo_ttft_s - request.est_prefill_s

    def admit(self, queues: Mapping[int, ModelQueue], budget: AdmissionBudget) -> list[PendingRequest]:
        for queue in queues.values():
            while (head := queue.peek()) is not None and head.priority < budget.now_s:
                queue.pop()
                head.priority += LATE
                queue.push(head)
        return _OrderedAdmission.admit(self, queues, budget)


@dataclass(slots=True)
class FirstComeFirstServed(_OrderedAdmission):
    name: str = "fcfs"
    description: str = "one queue across co-located models, earliest arrival first"

    def priority(self, request: PendingRequest) -> float:
        return request.arrival_s
