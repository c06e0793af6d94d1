"""vLLM's own telemetry names mapped onto Prism's records and the current GenAI names (prism_core/export/names.py).

vLLM already measures per-request latencies: its `llm_request` span (`--otlp-traces-endpoint`) carries them under
older, non-standard `gen_ai.latency.*` / `gen_ai.usage.*_tokens` attribute names, and its Prometheus endpoint
(`/metrics`) under `vllm:*`. Prism does not emit a second copy of what vLLM exports; these tables say which
Prism field or current GenAI name each of vLLM's names corresponds to, for `prism attach` (which reads
`/metrics`) and for anyone joining vLLM's spans with Prism's records. Source: vllm/tracing/utils.py (SpanAttributes)
and vllm/v1/metrics/loggers.py of vLLM 0.32.
"""

from __future__ import annotations

from prism_core.export import names as n

# vLLM span attribute -> RequestRecord field.
SPAN_TO_RECORD: dict[str, str] = {
    "gen_ai.latency.time_in_queue": "queue_s",
    "gen_ai.latency.time_to_first_token": "ttft_s",
    "gen_ai.latency.e2e": "e2e_s",
    "gen_ai.usage.prompt_tokens": "input_tokens",
    "gen_ai.usage.completion_tokens": "output_tokens",
    "gen_ai.response.model": "model",
}

# vLLM span attribute -> the name Prism puts on the wire for the same quantity.
SPAN_TO_CURRENT: dict[str, str] = {
    "gen_ai.usage.prompt_tokens": n.GEN_AI_USAGE_INPUT_TOKENS,
    "gen_ai.usage.completion_tokens": n.GEN_AI_USAGE_OUTPUT_TOKENS,
    "gen_ai.response.model": n.GEN_AI_RESPONSE_MODEL,
    "gen_ai.latency.time_in_queue": n.PRISM_REQUEST_QUEUE_S,
    "gen_ai.latency.time_to_first_token": n.PRISM_REQUEST_TTFT_S,
    "gen_ai.latency.e2e": n.GEN_AI_SERVER_REQUEST_DURATION,
    # Detailed traces (--collect-detailed-traces): per-request sums of what Prism records per batch stage.
    "gen_ai.latency.time_in_model_forward": n.PRISM_STAGE_DURATION,
    "gen_ai.latency.time_in_model_execute": n.PRISM_STAGE_DURATION,
    "gen_ai.latency.time_in_scheduler": n.PRISM_STAGE_DURATION,
}

# vLLM Prometheus histogram (seconds) -> (current GenAI / Prism metric, RequestRecord field it summarises).
METRIC_HISTOGRAMS: dict[str, tuple[str, str]] = {
    "vllm:time_to_first_token_seconds": (n.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, "ttft_s"),
    # One sample per request, as RequestRecord.tpot_s; vllm:inter_token_latency_seconds is one per token.
    "vllm:request_time_per_output_token_seconds": (n.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN, "tpot_s"),
    "vllm:e2e_request_latency_seconds": (n.GEN_AI_SERVER_REQUEST_DURATION, "e2e_s"),
    "vllm:request_queue_time_seconds": (n.PRISM_REQUEST_QUEUE_S, "queue_s"),
}

# The same histograms -> field only: what `prism attach` averages per interval.
HISTOGRAM_FIELDS: dict[str, str] = {metric: field for metric, (_, field) in METRIC_HISTOGRAMS.items()}

# vLLM Prometheus gauges and counters Prism reports as they are (no Prism record carries them).
METRIC_GAUGES: dict[str, str] = {
    "vllm:num_requests_running": "running",
    "vllm:num_requests_waiting": "waiting",
    "vllm:kv_cache_usage_perc": "kv_cache_usage",  # fraction 0..1 despite the name
    "vllm:prompt_tokens_total": "prompt_tokens",
    "vllm:generation_tokens_total": "generation_tokens",
}
