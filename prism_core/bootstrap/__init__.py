"""The `prism run` bootstrap: what the child process does at start-up, before the program's first line.

`prism run` puts `site/` (this folder's sitecustomize.py) first on PYTHONPATH and the export specs in
PRISM_EXPORT. The sitecustomize calls `activate()`, which only registers an import hook: when the program imports
a framework an adapter watches (`transformers`), the capture session starts and the adapter is installed.
Nothing here may stop the program: every failure is one line on stderr and the program runs uninstrumented.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from prism_core.bootstrap.hooks import PostImportHooks

if TYPE_CHECKING:
    from prism_core.capture.session import CaptureSession
    from prism_core.detect.online import OnlineDetection

SITE_DIR = Path(__file__).resolve().parent / "site"
ENV_EXPORT = "PRISM_EXPORT"

_lock = threading.RLock()  # re-entered when a watched module was imported before activate()
_session: CaptureSession | None = None
_hooks: PostImportHooks | None = None
_specs: list[str] | None = None  # export specs given to activate(); else PRISM_EXPORT
_online: OnlineDetection | None = None
problems: list[str] = []  # the latest warnings (at most 100): `prism attach` reports those its injection caused


def warn(message: str) -> None:
    problems.append(message)
    del problems[:-100]
    sys.stderr.write(f"prism: {message}\n")


def specs_from_env() -> list[str]:
    raw = os.environ.get(ENV_EXPORT, "").strip()
    if not raw:
        return []
    parsed = json.loads(raw) if raw.startswith("[") else raw.split(",")
    return [str(s) for s in parsed if str(s).strip()]


def activate(specs: list[str] | None = None) -> None:
    """Install the import hook for every framework an adapter knows (frameworks already imported are instrumented
    at once); `specs` replace PRISM_EXPORT. Idempotent; never raises."""
    global _hooks, _specs
    try:
        from prism_core.plugins import host

        with _lock:
            if _hooks is not None:
                return
            _specs = specs
            modules = {getattr(a, "module", None) for a in host().framework_adapters()} - {None}
            _hooks = PostImportHooks({m: _on_import for m in modules if m})
            _hooks.install()
    except Exception as exc:  # the program must run even when Prism cannot
        warn(f"capture disabled: {type(exc).__name__}: {exc}")


def _on_import(module: str) -> None:
    try:
        session = _ensure_session()
        for name, reason in session.install_all(module).items():
            warn(f"{name} not instrumented: {reason.reason}; the program runs uninstrumented")
    except Exception as exc:
        warn(f"{module} not instrumented: {type(exc).__name__}: {exc}")


def _ensure_session() -> CaptureSession:
    global _session, _online
    from prism_core.capture.session import CaptureSession

    with _lock:
        if _session is None:
            _quiet_otel_exporters()
            from prism_core.bootstrap.detect import ENV_STAGE_FAULTS, attach_from_env
            from prism_core.settings import _flag

            stage_faults = _flag(ENV_STAGE_FAULTS, os.environ.get(ENV_STAGE_FAULTS))
            session = CaptureSession.from_specs(
                specs_from_env() if _specs is None else _specs, stage_faults=stage_faults
            )
            atexit.register(session.close)
            _session = session
            try:
                online = attach_from_env(session)
            except Exception as exc:  # capture goes on without detection
                warn(f"anomaly detection disabled: {type(exc).__name__}: {exc}")
                online = None
            if online is not None:
                atexit.register(online.close)  # atexit runs last-in first-out: before session.close
            _online = online
        return _session


def installed() -> list[str]:
    """Names of the framework adapters capturing in this process now."""
    with _lock:
        return [a.name for a in _session.installed] if _session is not None else []


def deactivate() -> None:
    """Undo activate(): remove the import hook, put every engine back as it was, flush and close the exporters."""
    global _hooks, _session, _online, _specs
    with _lock:
        if _hooks is not None:
            _hooks.uninstall()
        for closing in (_online, _session):
            if closing is not None:
                atexit.unregister(closing.close)
                closing.close()
        _hooks = _session = _online = _specs = None


def _quiet_otel_exporters() -> None:
    # `prism run` already said, once, when an endpoint was unreachable; the exporter's per-retry warnings would
    # interleave with the program's own output. PRISM_LOG_LEVEL=DEBUG keeps them.
    import logging

    if os.environ.get("PRISM_LOG_LEVEL", "").upper() != "DEBUG":
        logging.getLogger("opentelemetry.exporter.otlp").setLevel(logging.CRITICAL)
        logging.getLogger("opentelemetry.sdk").setLevel(logging.CRITICAL)


__all__ = ["ENV_EXPORT", "SITE_DIR", "activate", "deactivate", "installed", "specs_from_env"]
