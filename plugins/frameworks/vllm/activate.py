"""The `vllm.general_plugins` entry point: vLLM calls it in every process it starts (API server, engine core,
workers), so `PRISM_ENABLE=1` instruments a vLLM server with no code change and no `prism run`, and
`PRISM_ELASTIC_KV=1` puts its KV cache on the elastic pool (`prism_plugins.frameworks.vllm.kv`), with or without
instrumentation.

It only turns on Prism's start-up bootstrap, which is idempotent: under `prism run` (PRISM_EXPORT set) the
bootstrap is already active and this is a no-op, and vLLM loading the plugin again in one process is harmless.
"""

from __future__ import annotations

import sys

from prism_core.bootstrap.enable import enabled, start
from prism_core.settings import elastic_kv


def register() -> None:
    """Entry point `prism = prism_plugins.frameworks.vllm.activate:register` in group vllm.general_plugins."""
    if elastic_kv() is not None:
        from prism_core.errors import UsageError
        from prism_plugins.frameworks.vllm import kv

        try:
            kv.install()
        except UsageError as exc:
            sys.stderr.write(f"prism: elastic KV off: {exc}\n")
    if enabled():
        start()
