"""Errors that reach the user."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user (flag, config, file): the CLI prints it as one line and exits 2."""
