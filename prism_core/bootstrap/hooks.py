"""Post-import hooks: run a callback right after a watched top-level module finishes importing.

A meta-path finder that, for a watched name, asks the rest of `sys.meta_path` for the spec and wraps that
spec's loader instance's `exec_module`. The module object, its loader and its spec stay the real ones.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from types import ModuleType


class PostImportHooks(importlib.abc.MetaPathFinder):
    def __init__(self, callbacks: dict[str, Callable[[str], None]]) -> None:
        self.callbacks = dict(callbacks)
        self._busy: set[str] = set()

    def install(self) -> None:
        """Hook future imports; fire at once for watched modules already imported. Idempotent."""
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        for name in list(self.callbacks):
            if name in sys.modules:
                self._fire(name)

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def _fire(self, name: str) -> None:
        callback = self.callbacks.pop(name, None)
        if callback is not None:
            callback(name)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.callbacks or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy.discard(fullname)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module
        hooks = self

        def exec_module(module: ModuleType) -> None:
            try:
                original(module)
            finally:
                # Restore the loader first: the callback may import submodules through the same machinery.
                loader.__dict__.pop("exec_module", None)
            hooks._fire(fullname)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
