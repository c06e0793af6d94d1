"""Every metric, span and attribute name Prism puts on the wire, in one place.

Where OpenTelemetry semantic conventions have a name we use it (system.*, hw.*, gen_ai.*); what they have no
name for lives under prism.*. The GenAI conventions are still "Development": expect renames here, nowhere else.
"""

from __future__ import annotations

# Host telemetry (OTel system semantic conventions).
SYSTEM_CPU_UTILIZATION = "system.cpu.utilization"  # fraction 0..1, all logical CPUs
SYSTEM_CPU_FREQUENCY = "system.cpu.frequency"  # Hz, mean over logical CPUs
SYSTEM_CPU_LOAD_1M = "system.cpu.load_average.1m"
SYSTEM_MEMORY_USAGE = "system.memory.usage"  # bytes in use (total - available)
SYSTEM_MEMORY_LIMIT = "system.memory.limit"  # bytes
PRISM_CPU_RUN_QUEUE = "prism.cpu.run_queue"  # runnable tasks (/proc/loadavg), what scheduler noise moves
