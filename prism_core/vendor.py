"""The one place vendor SDKs are imported and initialised: failures become `Unavailable`, never a crash."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

from prism_core.models import Unavailable

T = TypeVar("T")

log = logging.getLogger("prism.vendor")


def import_vendor(module: str, vendor: str, hint: str) -> ModuleType | Unavailable:
    """Import a vendor module. Any exception counts as absence: `import amdsmi` raises KeyError without ROCm."""
    try:
        return importlib.import_module(module)
    except Exception as exc:
        return Unavailable(
            vendor=vendor, reason=f"{module} not importable: {exc}; {hint}", error_type=type(exc).__name__
        )


def vendor_call(vendor: str, fn: Callable[[], T]) -> T | Unavailable:
    """Run a vendor init or query at the import/init boundary, turning any exception into `Unavailable`.

    Broad on purpose: cuda-python's cuInit raises a RuntimeError subclass rather than returning an error code
    when no driver is installed, and each SDK has its own exception hierarchy.
    """
    try:
        return fn()
    except Exception as exc:
        return Unavailable(vendor=vendor, reason=str(exc) or type(exc).__name__, error_type=type(exc).__name__)


def or_none(result: T | Unavailable, what: str) -> T | None:
    """For factory hooks, which answer None when they cannot serve: log the vendor's reason, return None."""
    if isinstance(result, Unavailable):
        log.warning("%s unavailable: %s", what, result)
        return None
    return result
