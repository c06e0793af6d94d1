"""`prism demo`: a real CPU engine under a replayed production trace, captured live, with a report folder."""

from prism_core.demo.replay import TraceRequest, load_trace
from prism_core.demo.report import write_report

__all__ = ["TraceRequest", "load_trace", "write_report"]
