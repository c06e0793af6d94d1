"""Detect: workload-conditioned latency model, control chart, online detector, alert sinks."""

from prism_core.detect.chart import ChartConfig, ControlChart
from prism_core.detect.detector import DEFAULT_WARMUP_BATCHES, Detector, DetectorConfig, Observation, deliver
from prism_core.detect.model import LatencyModel
from prism_core.detect.otel import OtelAlertSink
from prism_core.detect.sinks import AlertSink, FunctionSink, LogSink
from prism_core.detect.table import WorkloadTable, from_records, read_table
from prism_core.detect.webhook import WebhookSink

__all__ = [
    "DEFAULT_WARMUP_BATCHES",
    "AlertSink",
    "ChartConfig",
    "ControlChart",
    "Detector",
    "DetectorConfig",
    "FunctionSink",
    "LatencyModel",
    "LogSink",
    "Observation",
    "OtelAlertSink",
    "WebhookSink",
    "WorkloadTable",
    "deliver",
    "from_records",
    "read_table",
]
