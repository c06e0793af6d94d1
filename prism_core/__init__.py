"""Prism core: vendor-neutral, imports no accelerator or engine library at module level."""

from importlib.metadata import PackageNotFoundError, version

from prism_core.hookspecs import hookimpl

try:
    __version__ = version("prism-xpu")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "hookimpl"]
