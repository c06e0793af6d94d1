"""Environments for the child processes of tests: none of this process's Prism settings, or PRISM_ENABLE as a user
gets it from `prism hook install` without changing the environment running the tests."""

from __future__ import annotations

import os
from pathlib import Path

from prism_core.bootstrap.enable import install


def environ_without_prism() -> dict[str, str]:
    """This process's environment less every PRISM_* variable: a child starts as if Prism were never configured."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PRISM_")}


def hooked_pythonpath(folder: Path) -> dict[str, str]:
    """Install the hook into `folder`/site; return the PYTHONPATH under which every interpreter started, spawned
    children included, processes that folder as a site-packages folder (its .pth lines run at start-up): a
    sitecustomize in `folder`/shim calls `site.addsitedir`."""
    site, shim = folder / "site", folder / "shim"
    site.mkdir(parents=True, exist_ok=True)
    shim.mkdir(exist_ok=True)
    install(site)
    (shim / "sitecustomize.py").write_text(f"import site\nsite.addsitedir({str(site)!r})\n")
    rest = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([str(shim), rest]) if rest else str(shim)}
