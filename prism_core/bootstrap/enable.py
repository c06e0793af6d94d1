"""`PRISM_ENABLE=1` for any Python program of an environment: no `prism run`, no code change.

`prism hook install` writes one .pth file into the environment's site-packages. Python runs its one line at every
start-up; the line reads PRISM_ENABLE and, only when it is set, imports this module and calls `start()`. That turns on
the bootstrap `prism run` uses: an import hook, so capture starts when the program imports a framework an adapter
watches (vLLM, SGLang, transformers). Without PRISM_ENABLE the cost is one .pth line per start-up (BENCHMARKS.md). Child
processes inherit the variable, so a server's spawned engine processes (SGLang's scheduler, vLLM's engine core and
workers) instrument themselves too. vLLM needs no hook: its `vllm.general_plugins` entry point calls `start()`.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

from prism_core.bootstrap import ENV_EXPORT, activate
from prism_core.errors import UsageError

ENV_ENABLE = "PRISM_ENABLE"
TRUE = ("1", "true", "yes")
PTH_NAME = "prism-enable.pth"
# Python executes a .pth line that starts with `import`; it must stay one line. Editable installs put their import
# finder in `__editable__.*.pth`, which sorts (and so runs) before this file. Where Prism was uninstalled and the
# file left behind, the line finds no prism_core and does nothing.
PTH_LINE = (
    f'import os; os.environ.get("{ENV_ENABLE}", "").strip().lower() in {TRUE!r} '
    'and __import__("importlib.util").util.find_spec("prism_core") '
    f'and __import__("{__name__}", fromlist=["start"]).start()\n'
)


def enabled() -> bool:
    """PRISM_ENABLE is set, or `prism run` passed export specs (PRISM_EXPORT)."""
    return os.environ.get(ENV_ENABLE, "").strip().lower() in TRUE or bool(os.environ.get(ENV_EXPORT))


def start() -> None:
    """Turn on capture for this process: exports go to PRISM_EXPORT, else OTLP as the standard
    OTEL_EXPORTER_OTLP_* variables configure it. Idempotent; never raises (the program must run regardless)."""
    os.environ.setdefault(ENV_EXPORT, "otlp")
    activate()


def site_dir() -> Path:
    """site-packages of the interpreter running this: the environment the program runs in (Prism is installed
    there, since its processes import prism_core)."""
    return Path(sysconfig.get_paths()["purelib"])


def install(site: Path) -> Path:
    """Write the hook into `site`; rewriting an existing one is harmless. Written whole, then renamed."""
    if not site.is_dir():
        raise UsageError(f"{site} is not a directory")
    path = site / PTH_NAME
    tmp = site / f".{PTH_NAME}.{os.getpid()}.tmp"
    try:
        tmp.write_text(PTH_LINE)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def remove(site: Path) -> Path | None:
    """Delete the hook from `site`; returns its path, or None if it was not there."""
    path = site / PTH_NAME
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot remove {path}: {exc.strerror or exc}") from None
    return path


def installed_at(site: Path) -> bool:
    """The hook in `site` is this version's (an older line counts as absent: install again)."""
    try:
        return (site / PTH_NAME).read_text() == PTH_LINE
    except OSError:
        return False
