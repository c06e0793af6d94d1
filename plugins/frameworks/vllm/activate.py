"""The `vllm.general_plugins` entry point: vLLM calls it in every process it starts (API server, engine core,
workers), so `PRISM_ENABLE=1` instruments a vLLM server with no code change and no `prism run`, and
`PRISM_ELASTIC_KV=1` puts its KV cache on the elastic pool (`prism_plugins.frameworks.vllm.kv`), with or without
instrumentation.

It only turns on Prism's start-up bootstrap, which is idempotent: under `prism run` (PRISM_EXPORT set) the
bootstrap is already active and this is a no-op, and vLLM loading the plugin again in one process is harmless.
"""

from __future__ import annotations

import os
import sys

from prism_core.settings import elastic_kv

ENV_ENABLE = "PRISM_ENABLE"


def enabled() -> bool:
    flag = os.environ.get(ENV_ENABLE, "").strip().lower()
    return flag in ("1", "true", "yes") or bool(os.environ.get("PRISM_EXPORT"))


def register() -> None:
    """Entry point `prism = prism_plugins.frameworks.vllm.activate:register` in group vllm.general_plugins."""
    if elastic_kv() is not None:
        from prism_core.errors import UsageError
        from prism_plugins.frameworks.vllm import kv

        try:
            kv.install()
        except UsageError as exc:
            sys.stderr.write(f"prism: elastic KV off: {exc}\n")
    if not enabled():
        return
    # PRISM_ENABLE alone exports over OTLP as configured by the standard OTEL_EXPORTER_OTLP_* variables.
    os.environ.setdefault("PRISM_EXPORT", "otlp")
    try:
        from prism_core.bootstrap import activate

        activate()
    except Exception as exc:  # vLLM must start even when Prism cannot
        sys.stderr.write(f"prism: vllm not instrumented: {type(exc).__name__}: {exc}\n")
