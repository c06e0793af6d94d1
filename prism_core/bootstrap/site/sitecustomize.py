"""Prism's `prism run` start-up hook. It chains to the sitecustomize it shadows, then starts capture."""

import importlib.machinery
import importlib.util
import os
import sys


def _chain() -> None:
    # Run the sitecustomize that would have run without us (Debian's, a venv's, the user's).
    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.pop("sitecustomize", None)
    paths = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", paths)
    if spec is None or spec.loader is None:
        if ours is not None:
            sys.modules["sitecustomize"] = ours
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.stderr.write(f"prism: the program's own sitecustomize failed: {type(exc).__name__}: {exc}\n")


def _activate() -> None:
    try:
        from prism_core.bootstrap import activate
    except Exception as exc:
        sys.stderr.write(f"prism: {sys.executable} cannot import prism_core ({exc}); running uninstrumented\n")
        return
    activate()


_chain()
_activate()
