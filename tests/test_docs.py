"""Docs as tests: every hook spec is documented with its exact signature, explained, and tested."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from prism_core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(n for n in dir(hookspecs) if n.startswith("prism_"))


def signature(name: str) -> str:
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({params}) -> {sig.return_annotation}"


def test_there_are_specs() -> None:
    assert len(SPECS) >= 10


@pytest.mark.parametrize("name", SPECS)
def test_spec_is_in_docs_with_exact_signature(name: str) -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert signature(name) in docs, f"docs/plugins.md lacks `{signature(name)}`"


@pytest.mark.parametrize("name", SPECS)
def test_spec_docstring_says_caller_and_return(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Called by" in doc and "Return" in doc, f"{name}'s docstring must say who calls it and what it returns"


@pytest.mark.parametrize("name", SPECS)
def test_spec_has_a_test(name: str) -> None:
    here = Path(__file__).resolve()
    sources = [p for p in (ROOT / "tests").rglob("test_*.py") if p != here]
    sources += list((ROOT / "examples").rglob("test_*.py"))
    # A hook counts as tested when a test implements it or calls it through the host's accessor.
    accessor = name.removeprefix("prism_").removeprefix("xpu_").removesuffix("s")
    pattern = re.compile(rf"\b({name}|\.{accessor}s?\()")
    assert any(pattern.search(p.read_text()) for p in sources), f"no test implements or calls {name}"


def test_readme_documents_every_cli_command() -> None:
    from prism_core.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    missing = [c for c in sub.choices if f"prism {c}" not in readme]  # type: ignore[union-attr]
    assert not missing, f"README does not show: {missing}"
