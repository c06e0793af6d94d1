"""Built-in alert sinks, registered through the `prism` entry-point group like any plugin."""

from __future__ import annotations

from prism_core.detect.sinks import AlertSink, LogSink
from prism_core.hookspecs import hookimpl


@hookimpl
def prism_alert_sinks() -> list[AlertSink]:
    return [LogSink()]
