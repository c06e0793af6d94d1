"""Shared fixtures. Third-party plugins are not autoloaded unless a test asks (PRISM_DISABLE_PLUGIN_AUTOLOAD)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["PRISM_DISABLE_PLUGIN_AUTOLOAD"] = "1"

from prism_core import plugins
from prism_core.plugins import PluginHost
from prism_core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def builtin_host() -> PluginHost:
    """A fresh host with the built-in plugins, loaded through their entry points."""
    h = PluginHost(Settings(autoload=False))
    h.load_entry_points()
    return h


@pytest.fixture(autouse=True)
def _fresh_process_host() -> Iterator[None]:
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def prism_cmd() -> list[str]:
    """The `prism` command of this interpreter's environment, for subprocess tests."""
    return [sys.executable, "-m", "prism_core"]
