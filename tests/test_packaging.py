"""The distribution ships every package, and every declared entry point imports."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set()
    for top, folder in (("prism_core", "prism_core"), ("prism_plugins", "plugins")):
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((top, *rel)))
    assert found == listed, f"missing from pyproject: {sorted(found - listed)}; stale: {sorted(listed - found)}"


def test_entry_points_import() -> None:
    for name, target in PYPROJECT["project"]["entry-points"]["prism"].items():
        module = importlib.import_module(target)
        assert any(n.startswith("prism_") for n in dir(module)), f"entry point {name} implements no hook"


def test_core_imports_no_vendor_or_engine_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, prism_core.plugins, prism_core.cli, prism_core.testing; "
        "h = prism_core.plugins.host(); h.plugin_infos(); "
        "bad = [m for m in ('torch', 'transformers', 'vllm', 'cuda', 'acl', 'amdsmi') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing Prism pulled in {out}"
