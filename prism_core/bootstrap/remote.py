"""What `prism attach` runs inside a live Python 3.14+ process through `sys.remote_exec` (prism_core/attach/inject.py).

The injected script imports this module from the target's own environment (Prism must be installed there, as for
`prism run`), calls `attach` or `detach`, and the outcome comes back as a small JSON file the attaching process
waits for. `attach` is the `prism run` bootstrap started late: frameworks already imported are instrumented at
once, later imports through the import hook. `detach` restores every patched attribute and flushes the exporters.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from prism_core import bootstrap


def _report(marker: str, **fields: object) -> None:
    path = Path(marker)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "python": list(sys.version_info[:3]), **fields}))
    os.replace(tmp, path)  # the attaching side never reads half a report


def attach(specs: list[str], marker: str) -> None:
    """Start capture; if any part of it failed, undo all of it and say why."""
    bootstrap.problems.clear()
    bootstrap.activate(specs)
    failed = list(bootstrap.problems)
    if failed:
        bootstrap.deactivate()
        _report(marker, ok=False, action="attach", error="; ".join(failed))
    else:
        _report(marker, ok=True, action="attach", installed=bootstrap.installed())


def detach(marker: str) -> None:
    was = bootstrap.installed()
    bootstrap.deactivate()
    _report(marker, ok=True, action="detach", installed=was)


def script(action: str, specs: list[str], marker: str) -> str:
    """The source `sys.remote_exec` runs: one function, deleted after, so the target's namespace is left as found.
    When the attaching side gave up waiting (`<marker>.cancel` exists) it only removes its folder."""
    call = f"attach({specs!r}, marker)" if action == "attach" else "detach(marker)"
    return f"""def _prism_remote(marker={marker!r}):
    import json, os, shutil
    if os.path.exists(marker + ".cancel"):
        shutil.rmtree(os.path.dirname(marker), ignore_errors=True)
        return
    try:
        from prism_core.bootstrap.remote import attach, detach
        {call}
    except BaseException as exc:
        with open(marker + ".tmp", "w") as f:
            json.dump({{"ok": False, "pid": os.getpid(), "error": f"{{type(exc).__name__}}: {{exc}}"}}, f)
        os.replace(marker + ".tmp", marker)
_prism_remote()
del _prism_remote
"""
