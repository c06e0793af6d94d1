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

# GenAI semantic conventions (Development status; pinned to semantic-conventions 0.66b2 / semconv 1.36+ names).
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_OPERATION_TEXT_COMPLETION = "text_completion"

GEN_AI_SERVER_TIME_TO_FIRST_TOKEN = "gen_ai.server.time_to_first_token"
GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN = "gen_ai.server.time_per_output_token"
GEN_AI_SERVER_REQUEST_DURATION = "gen_ai.server.request.duration"

# The spec's advised ExplicitBucketBoundaries (gen-ai-metrics.md); the semconv helpers do not pass them.
TTFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
REQUEST_DURATION_BUCKETS_S = tuple(0.01 * 2**i for i in range(14))  # 0.01 ... 81.92, doubling

# Batches and stages: no semconv name exists for an engine iteration.
PRISM_BATCH_SPAN = "prism.batch"
PRISM_STAGE_SPAN_PREFIX = "prism.stage."  # + stage name
PRISM_BATCH_DURATION = "prism.batch.duration"  # histogram, s, by mode and model
PRISM_STAGE_DURATION = "prism.stage.duration"  # histogram, s, by stage and mode
PRISM_CAPTURE_DROPPED = "prism.capture.events_dropped"  # counter: events the full ring turned away
PRISM_CAPTURE_BATCHES = "prism.capture.batches"  # counter: batch records assembled
PRISM_CAPTURE_COLLECTOR_CPU = "prism.capture.collector.cpu_time"  # counter, s: CPU the collector thread used
# `prism attach` from outside the process (gauges, one point per report interval):
PRISM_ATTACH_STAGE_SHARE = "prism.attach.stage.share"  # 1: a stage's share of an engine thread's in-stage samples
PRISM_ATTACH_BUSY = "prism.attach.engine.busy"  # 1: share of an engine thread's samples inside any stage
PRISM_ATTACH_LATENCY_MEAN = "prism.attach.request.latency.mean"  # s: mean over the interval, by prism.latency
PRISM_ATTACH_REQUESTS = "prism.attach.requests"  # requests finished in the interval (engine metrics)
PRISM_LATENCY = "prism.latency"  # attribute: ttft | tpot | e2e | queue
# Engine iterations on CPU run from ~50 us (tiny decode) to seconds (long prefill): 1-2-5 steps over that range.
BATCH_BUCKETS_S = (*(m * 10.0**e for e in range(-5, 1) for m in (1, 2, 5)), 10.0)

PRISM_BATCH_MODE = "prism.batch.mode"
PRISM_BATCH_SIZE = "prism.batch.size"
PRISM_BATCH_PREFILL_TOKENS = "prism.batch.prefill_tokens"
PRISM_BATCH_DECODE_TOKENS = "prism.batch.decode_tokens"
PRISM_BATCH_AVG_INPUT_LEN = "prism.batch.avg_input_len"
PRISM_BATCH_MAX_INPUT_LEN = "prism.batch.max_input_len"
PRISM_BATCH_AVG_OUTPUT_LEN = "prism.batch.avg_output_len"
PRISM_BATCH_MAX_OUTPUT_LEN = "prism.batch.max_output_len"
PRISM_BATCH_KV_TOKENS = "prism.batch.kv_tokens"
PRISM_ENGINE = "prism.engine"
PRISM_DEVICE = "prism.device"
PRISM_PID = "prism.pid"
PRISM_STAGE = "prism.stage"
PRISM_STAGE_DEVICE_NS = "prism.stage.device_ns"
PRISM_REQUEST_QUEUE_S = "prism.request.queue_s"
PRISM_REQUEST_TTFT_S = "prism.request.ttft_s"
PRISM_REQUEST_TPOT_S = "prism.request.tpot_s"

# Accelerator telemetry. OTel hardware GPU conventions (hw.gpu.*, hw.power, hw.temperature) where a name exists;
# every accelerator plugin (nvidia, amd, ascend) uses the same names so diagnosis reads them alike. Values are SI:
# fractions 0..1, bytes, bytes/s, Hz, W, degrees Celsius.
HW_GPU_UTILIZATION = "hw.gpu.utilization"  # fraction of time the compute engine was busy (hw.gpu.task=general)
HW_GPU_MEMORY_USAGE = "hw.gpu.memory.usage"  # bytes of device memory in use
HW_GPU_MEMORY_LIMIT = "hw.gpu.memory.limit"  # bytes of device memory
HW_POWER = "hw.power"  # W drawn by the device
HW_TEMPERATURE = "hw.temperature"  # degrees Celsius of the die (NVIDIA: GPU core; AMD: hotspot/junction)
PRISM_GPU_MEMORY_BUSY = "prism.gpu.memory.busy"  # fraction of time device memory was read or written
PRISM_GPU_CLOCK_SM = "prism.gpu.clock.sm"  # Hz, SM / graphics (GFX) clock
PRISM_GPU_CLOCK_MEMORY = "prism.gpu.clock.memory"  # Hz, memory clock
PRISM_GPU_CLOCK_EVENT_REASONS = "prism.gpu.clock.event_reasons"  # vendor bitmask (NVML nvmlClocksEventReason*)
PRISM_GPU_PCIE_TX = "prism.gpu.pcie.tx"  # bytes/s device to host over PCIe
PRISM_GPU_PCIE_RX = "prism.gpu.pcie.rx"  # bytes/s host to device over PCIe
PRISM_GPU_PCIE_THROUGHPUT = "prism.gpu.pcie.throughput"  # bytes/s both directions (where the vendor gives no split)
PRISM_GPU_LINK_TX = "prism.gpu.link.tx"  # bytes/s sent over GPU-GPU links (NVLink; XGMI)
PRISM_GPU_LINK_RX = "prism.gpu.link.rx"  # bytes/s received over GPU-GPU links
PRISM_GPU_ECC_CORRECTED = "prism.gpu.ecc.corrected"  # corrected ECC errors since the driver loaded
PRISM_GPU_ECC_UNCORRECTED = "prism.gpu.ecc.uncorrected"  # uncorrected ECC errors since the driver loaded
PRISM_GPU_XID_ERRORS = "prism.gpu.xid.errors"  # critical XID events seen since the sampler started
PRISM_NPU_VECTOR_UTILIZATION = "prism.npu.vector.utilization"  # Ascend Vector unit busy fraction
PRISM_NPU_AICPU_UTILIZATION = "prism.npu.aicpu.utilization"  # Ascend AI CPU busy fraction
