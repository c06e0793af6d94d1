"""Typed answers of the pool and the broker: a grant, or "cannot schedule now" (never an exception)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Grant:
    """The broker let the model hold `nbytes` more."""

    nbytes: int


@dataclass(frozen=True, slots=True)
class CannotSchedule:
    """Not now: the engine retries later or preempts a request. `reason` says which limit was hit."""

    reason: str
    needed_bytes: int = 0
    free_bytes: int = 0
