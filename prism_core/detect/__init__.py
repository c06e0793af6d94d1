"""Detect: workload-conditioned latency model, control chart, alerts."""

from prism_core.detect.sinks import AlertSink, LogSink

__all__ = ["AlertSink", "LogSink"]
