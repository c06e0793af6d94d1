"""Canonical stage names and the annotation interface framework adapters call.

Adapters map their engine's own phases onto these names so records from any engine line up.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from prism_core.capture.workload import LazyRequests, LazyWorkload

SCHEDULE = "schedule"
PREPARE_INPUTS = "prepare_inputs"
FORWARD = "forward"
SAMPLE = "sample"
POSTPROCESS = "postprocess"

CANONICAL_STAGES: tuple[str, ...] = (SCHEDULE, PREPARE_INPUTS, FORWARD, SAMPLE, POSTPROCESS)


@runtime_checkable
class StageRecorder(Protocol):
    """What an adapter calls on the engine's thread. Hot path: each call must cost well under 1 us.

    Per thread, an iteration is `iteration_begin()`, balanced `begin`/`end` pairs (nesting allowed: a stage's
    time excludes the stages nested in it), then `iteration_end(workload)`. An `iteration_begin` while an
    iteration is still open on that thread discards the open one (an engine step that found nothing to do).
    """

    def begin(self, stage: str) -> None:
        """A stage of the current iteration starts now."""
        ...

    def end(self, stage: str) -> None:
        """The stage most recently begun with this name ends now."""
        ...

    def iteration_begin(self) -> None:
        """An engine iteration (one batch) starts now on this thread."""
        ...

    def iteration_end(self, workload: LazyWorkload) -> None:
        """The iteration open on this thread ends now; `workload` says what it computed."""
        ...

    def requests_done(self, requests: LazyRequests) -> None:
        """Requests finished; their milestones become RequestRecords on the collector thread."""
        ...
