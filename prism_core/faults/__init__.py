"""Anomaly simulation toolkit: fault injectors contributed by plugins, ground truth, runners, stage delays."""

from prism_core.faults.base import FaultInjector
from prism_core.faults.runner import FaultSchedule, ScheduledFault, run_fault
from prism_core.faults.stage_delay import DelayingRecorder, clear_stage_delay, set_stage_delay, stage_delay
from prism_core.faults.threads import ThreadFault
from prism_core.faults.timeline import FaultEvent, FaultTimeline, label_at

__all__ = [
    "DelayingRecorder",
    "FaultEvent",
    "FaultInjector",
    "FaultSchedule",
    "FaultTimeline",
    "ScheduledFault",
    "ThreadFault",
    "clear_stage_delay",
    "label_at",
    "run_fault",
    "set_stage_delay",
    "stage_delay",
]
