"""Canonical stage names and the annotation interface framework adapters call.

Adapters map their engine's own phases onto these names so records from any engine line up.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

SCHEDULE = "schedule"
PREPARE_INPUTS = "prepare_inputs"
FORWARD = "forward"
SAMPLE = "sample"
POSTPROCESS = "postprocess"

CANONICAL_STAGES: tuple[str, ...] = (SCHEDULE, PREPARE_INPUTS, FORWARD, SAMPLE, POSTPROCESS)


@runtime_checkable
class StageRecorder(Protocol):
    """What an adapter calls on the engine's thread. Hot path: each call must cost well under 1 us."""

    def begin(self, stage: str) -> None:
        """A stage of the current iteration starts now."""
        ...

    def end(self, stage: str) -> None:
        """The stage most recently begun with this name ends now."""
        ...
