"""Scheduling policies: the interfaces placement and admission plugins implement."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class PlacementPolicy(Protocol):
    """Global level: decides which models live on which devices."""

    name: str


@runtime_checkable
class AdmissionPolicy(Protocol):
    """Local level, one per device: decides which queued request runs next, within the memory budget."""

    name: str
