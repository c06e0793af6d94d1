"""Prism's built-in plugins, one package per accelerator vendor (and, later, per serving framework)."""
