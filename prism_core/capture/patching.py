"""Reversible attribute patches for framework adapters: install once, restore exactly.

Each patch remembers whether the owner had the attribute in its own `__dict__` (not inherited), so uninstall
puts back the original object, or deletes the attribute when it had been inherited.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from prism_core.capture.stages import StageRecorder

_MISSING = object()


def timed_stage(
    stage: str, original: Callable[..., Any], recorder: Callable[[], StageRecorder | None]
) -> Callable[..., Any]:
    """`original`, each call recorded as one `stage` on `recorder()`; where that is None the call runs unobserved."""

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        rec = recorder()
        if rec is None:
            return original(*args, **kwargs)
        rec.begin(stage)
        try:
            return original(*args, **kwargs)
        finally:
            rec.end(stage)

    return wrapper


class Patcher:
    """A set of attribute patches applied and undone together. Not thread-safe: install before serving."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    @property
    def active(self) -> bool:
        return bool(self._saved)

    def wrap(self, owner: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        """Replace `owner.name` by `make(original)`; the original is looked up through inheritance."""
        original = getattr(owner, name)
        self._saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, make(original))

    def is_patched(self, owner: Any, name: str) -> bool:
        return any(o is owner and n == name for o, n, _ in self._saved)

    def restore(self) -> None:
        """Undo every patch, last first. Idempotent."""
        while self._saved:
            owner, name, original = self._saved.pop()
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
