"""The OTLP/gRPC receiver tests read exports back from (it lives in prism_core.export.receiver: `prism top` uses
it), and loopback port helpers for tests that start a listener in another process."""

from __future__ import annotations

from prism_core.export.receiver import OtlpReceiver, ReceivedMetric, ReceivedSpan
from prism_core.loopback import free_port, wait_listening

__all__ = ["OtlpReceiver", "ReceivedMetric", "ReceivedSpan", "free_port", "wait_listening"]
