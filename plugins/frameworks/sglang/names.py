"""SGLang's Prometheus names (`--enable-metrics`) mapped onto Prism's RequestRecord fields, for `prism attach`.
Source: sglang/srt/metrics/collector.py (SGLang 0.4-0.5)."""

from __future__ import annotations

# Histogram (seconds) -> the RequestRecord field it summarises. SGLang's inter-token latency is per token.
METRIC_HISTOGRAMS: dict[str, str] = {
    "sglang:time_to_first_token_seconds": "ttft_s",
    "sglang:inter_token_latency_seconds": "tpot_s",
    "sglang:e2e_request_latency_seconds": "e2e_s",
    "sglang:queue_time_seconds": "queue_s",
}

# Gauges Prism reports as they are.
METRIC_GAUGES: dict[str, str] = {
    "sglang:num_running_reqs": "running",
    "sglang:num_queue_reqs": "waiting",
    "sglang:token_usage": "kv_cache_usage",
}
