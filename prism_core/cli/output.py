"""Output helpers shared by every sub-command: JSON for scripts, rich tables for people."""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def _plain(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    """One JSON document on stdout (models serialised the way they are on disk)."""
    sys.stdout.write(json.dumps(_plain(obj), indent=2) + "\n")
